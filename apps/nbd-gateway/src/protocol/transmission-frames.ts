/**
 * Pure encode/decode of transmission-phase frames. Hot-path functions write into a Buffer the
 * caller pre-allocated (so a reply's header and data go out in one write) and keep handles and
 * offsets as plain numbers: a handle is two 32-bit halves copied back as-is, an offset is
 * hi * 2^32 + lo (exact below 2^53, which is larger than any device we serve).
 */
import {
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_REQUEST_MAGIC,
  NBD_REQUEST_SIZE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_SIMPLE_REPLY_SIZE,
  NBD_STRUCTURED_REPLY_HEADER_SIZE,
  NBD_STRUCTURED_REPLY_MAGIC,
} from "./constants";
import { ProtocolError, truncateUtf8 } from "./handshake-frames";

const TWO_32 = 0x1_0000_0000;

export interface RequestHeader {
  flags: number;
  type: number;
  handleHi: number;
  handleLo: number;
  offset: number;
  length: number;
}

/**
 * C: 32 bits, 0x25609513, magic (`NBD_REQUEST_MAGIC`)
 * C: 16 bits, command flags
 * C: 16 bits, type
 * C: 64 bits, handle
 * C: 64 bits, offset (unsigned)
 * C: 32 bits, length (unsigned)
 * A bad magic is a framing error: the stream cannot be resynchronised.
 */
export function decodeRequestHeader(buf: Buffer, at: number): RequestHeader {
  if (buf.readUInt32BE(at) !== NBD_REQUEST_MAGIC) throw new ProtocolError("bad request magic", true);
  return {
    flags: buf.readUInt16BE(at + 4),
    type: buf.readUInt16BE(at + 6),
    handleHi: buf.readUInt32BE(at + 8),
    handleLo: buf.readUInt32BE(at + 12),
    offset: buf.readUInt32BE(at + 16) * TWO_32 + buf.readUInt32BE(at + 20),
    length: buf.readUInt32BE(at + 24),
  };
}

export function encodeRequest(type: number, flags: number, handle: number, offset: number, length: number, payload?: Uint8Array): Buffer {
  const buf = Buffer.alloc(NBD_REQUEST_SIZE + (payload?.length ?? 0));
  buf.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  buf.writeUInt16BE(flags, 4);
  buf.writeUInt16BE(type, 6);
  writeUInt64(buf, 8, handle);
  writeUInt64(buf, 16, offset);
  buf.writeUInt32BE(length >>> 0, 24);
  if (payload) buf.set(payload, NBD_REQUEST_SIZE);
  return buf;
}

/**
 * S: 32 bits, 0x67446698, magic (`NBD_SIMPLE_REPLY_MAGIC`)
 * S: 32 bits, error (MAY be zero)
 * S: 64 bits, handle
 * S: (*length* bytes of data if the request is of type `NBD_CMD_READ` and *error* is zero)
 */
export function writeSimpleReplyHeader(buf: Buffer, at: number, error: number, handleHi: number, handleLo: number): number {
  buf.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, at);
  buf.writeUInt32BE(error, at + 4);
  buf.writeUInt32BE(handleHi, at + 8);
  buf.writeUInt32BE(handleLo, at + 12);
  return at + NBD_SIMPLE_REPLY_SIZE;
}

/**
 * S: 32 bits, 0x668e33ef, magic (`NBD_STRUCTURED_REPLY_MAGIC`)
 * S: 16 bits, flags
 * S: 16 bits, type
 * S: 64 bits, handle
 * S: 32 bits, length of payload (unsigned)
 */
export function writeStructuredHeader(buf: Buffer, at: number, flags: number, type: number, handleHi: number, handleLo: number, payloadLength: number): number {
  buf.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, at);
  buf.writeUInt16BE(flags, at + 4);
  buf.writeUInt16BE(type, at + 6);
  buf.writeUInt32BE(handleHi, at + 8);
  buf.writeUInt32BE(handleLo, at + 12);
  buf.writeUInt32BE(payloadLength, at + 16);
  return at + NBD_STRUCTURED_REPLY_HEADER_SIZE;
}

/** Bytes before the data of an OFFSET_DATA chunk: chunk header + 64-bit offset. */
export const OFFSET_DATA_HEADER_SIZE = NBD_STRUCTURED_REPLY_HEADER_SIZE + 8;

/**
 * `NBD_REPLY_TYPE_OFFSET_DATA` (1): "*length* MUST be at least 9"; payload: 64 bits: offset
 * (unsigned); *length - 8* bytes: data. Writes the 28-byte prefix; the caller reads the data
 * straight into `buf` after it.
 */
export function writeOffsetDataHeader(buf: Buffer, at: number, flags: number, handleHi: number, handleLo: number, offset: number, dataLength: number): number {
  at = writeStructuredHeader(buf, at, flags, NBD_REPLY_TYPE_OFFSET_DATA, handleHi, handleLo, 8 + dataLength);
  writeUInt64(buf, at, offset);
  return at + 8;
}

export const OFFSET_HOLE_CHUNK_SIZE = NBD_STRUCTURED_REPLY_HEADER_SIZE + 12;

/**
 * `NBD_REPLY_TYPE_OFFSET_HOLE` (2): "*length* MUST be exactly 12"; payload: 64 bits: offset
 * (unsigned); 32 bits: hole size (unsigned, MUST be nonzero)
 */
export function writeOffsetHoleChunk(buf: Buffer, at: number, flags: number, handleHi: number, handleLo: number, offset: number, holeSize: number): number {
  at = writeStructuredHeader(buf, at, flags, NBD_REPLY_TYPE_OFFSET_HOLE, handleHi, handleLo, 12);
  writeUInt64(buf, at, offset);
  buf.writeUInt32BE(holeSize, at + 8);
  return at + 12;
}

export interface BlockStatusDescriptor {
  /** "32 bits, length of the extent to which the status below applies (unsigned, MUST be nonzero)" */
  length: number;
  /** "32 bits, status flags" */
  flags: number;
}

/**
 * `NBD_REPLY_TYPE_BLOCK_STATUS` (5): "*length* MUST be 4 + (a positive integer multiple of 8)";
 * payload: 32 bits, metadata context ID; then descriptors (32 bits length, 32 bits status flags).
 */
export function encodeBlockStatusChunk(
  flags: number,
  handleHi: number,
  handleLo: number,
  contextId: number,
  descriptors: readonly BlockStatusDescriptor[],
): Buffer {
  const payload = 4 + 8 * descriptors.length;
  const buf = Buffer.allocUnsafe(NBD_STRUCTURED_REPLY_HEADER_SIZE + payload);
  let at = writeStructuredHeader(buf, 0, flags, NBD_REPLY_TYPE_BLOCK_STATUS, handleHi, handleLo, payload);
  buf.writeUInt32BE(contextId, at);
  at += 4;
  for (const d of descriptors) {
    buf.writeUInt32BE(d.length, at);
    buf.writeUInt32BE(d.flags >>> 0, at + 4);
    at += 8;
  }
  return buf;
}

/**
 * `NBD_REPLY_TYPE_ERROR` (2^15 + 1): "*length* MUST be at least 6"; payload: 32 bits: error
 * (MUST be nonzero); 16 bits: message length; *message length* bytes: optional string.
 */
export function encodeErrorChunk(flags: number, handleHi: number, handleLo: number, error: number, message = ""): Buffer {
  const text = truncateUtf8(message, 4096);
  const buf = Buffer.allocUnsafe(NBD_STRUCTURED_REPLY_HEADER_SIZE + 6 + text.length);
  const at = writeStructuredHeader(buf, 0, flags, NBD_REPLY_TYPE_ERROR, handleHi, handleLo, 6 + text.length);
  buf.writeUInt32BE(error, at);
  buf.writeUInt16BE(text.length, at + 4);
  text.copy(buf, at + 6);
  return buf;
}

/** `NBD_REPLY_TYPE_NONE` (0): "*length* MUST be 0 ... MUST always be used with the `NBD_REPLY_FLAG_DONE` bit set" */
export function encodeNoneChunk(handleHi: number, handleLo: number): Buffer {
  const buf = Buffer.allocUnsafe(NBD_STRUCTURED_REPLY_HEADER_SIZE);
  writeStructuredHeader(buf, 0, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, handleHi, handleLo, 0);
  return buf;
}

export function encodeSimpleReply(error: number, handleHi: number, handleLo: number): Buffer {
  const buf = Buffer.allocUnsafe(NBD_SIMPLE_REPLY_SIZE);
  writeSimpleReplyHeader(buf, 0, error, handleHi, handleLo);
  return buf;
}

/** Writes a non-negative integer below 2^53 as 64 bits big-endian without BigInt. */
export function writeUInt64(buf: Buffer, at: number, value: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_32), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
}

export function readUInt64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * TWO_32 + buf.readUInt32BE(at + 4);
}
