/**
 * Pure encode/decode of handshake-phase frames (fixed newstyle negotiation). No sockets:
 * each function maps bytes to values or values to a Buffer, and rejects what cannot be parsed
 * with a `ProtocolError` so the caller can answer NBD_REP_ERR_INVALID or hang up.
 */
import {
  NBD_EXPORT_NAME_ZEROES,
  NBD_GREETING_SIZE,
  NBD_IHAVEOPT,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_INIT_PASSWD,
  NBD_MAX_STRING_LENGTH,
  NBD_OPTION_HEADER_SIZE,
  NBD_OPTION_REPLY_HEADER_SIZE,
  NBD_REP_INFO,
  NBD_REP_MAGIC,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
} from "./constants";

/** A frame that does not follow the protocol. `fatal` frames leave the stream out of sync. */
export class ProtocolError extends Error {
  readonly fatal: boolean;
  constructor(message: string, fatal = false) {
    super(message);
    this.name = "ProtocolError";
    this.fatal = fatal;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * "a string ... is a sequence of UTF-8 code points, which is not NUL terminated, MUST NOT contain
 * NUL characters, SHOULD be no longer than 256 bytes and MUST be no longer than 4096 bytes."
 */
export function decodeString(bytes: Uint8Array, what: string): string {
  if (bytes.length > NBD_MAX_STRING_LENGTH) throw new ProtocolError(`${what} longer than ${NBD_MAX_STRING_LENGTH} bytes`);
  if (bytes.includes(0)) throw new ProtocolError(`${what} contains NUL`);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ProtocolError(`${what} is not UTF-8`);
  }
}

/**
 * S: 64 bits, `NBDMAGIC`; S: 64 bits, `IHAVEOPT`; S: 16 bits, handshake flags
 */
export function encodeGreeting(handshakeFlags: number): Buffer {
  const buf = Buffer.alloc(NBD_GREETING_SIZE);
  buf.writeBigUInt64BE(NBD_INIT_PASSWD, 0);
  buf.writeBigUInt64BE(NBD_IHAVEOPT, 8);
  buf.writeUInt16BE(handshakeFlags, 16);
  return buf;
}

export function decodeGreeting(buf: Uint8Array): { handshakeFlags: number } {
  const b = asBuffer(buf);
  if (b.length < NBD_GREETING_SIZE) throw new ProtocolError("short greeting", true);
  if (b.readBigUInt64BE(0) !== NBD_INIT_PASSWD || b.readBigUInt64BE(8) !== NBD_IHAVEOPT) {
    throw new ProtocolError("bad greeting magic", true);
  }
  return { handshakeFlags: b.readUInt16BE(16) };
}

/** C: 32 bits, client flags */
export function decodeClientFlags(buf: Uint8Array): number {
  return asBuffer(buf).readUInt32BE(0);
}

export interface OptionHeader {
  option: number;
  length: number;
}

/**
 * C: 64 bits, `0x49484156454F5054` (ASCII '`IHAVEOPT`')
 * C: 32 bits, option
 * C: 32 bits, length of option data (unsigned)
 */
export function decodeOptionHeader(buf: Uint8Array): OptionHeader {
  const b = asBuffer(buf);
  if (b.length < NBD_OPTION_HEADER_SIZE) throw new ProtocolError("short option header", true);
  if (b.readBigUInt64BE(0) !== NBD_IHAVEOPT) throw new ProtocolError("bad option magic", true);
  return { option: b.readUInt32BE(8), length: b.readUInt32BE(12) };
}

export function encodeOption(option: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const buf = Buffer.alloc(NBD_OPTION_HEADER_SIZE + data.length);
  buf.writeBigUInt64BE(NBD_IHAVEOPT, 0);
  buf.writeUInt32BE(option, 8);
  buf.writeUInt32BE(data.length, 12);
  buf.set(data, NBD_OPTION_HEADER_SIZE);
  return buf;
}

/**
 * S: 64 bits, `0x3e889045565a9` (magic number for replies)
 * S: 32 bits, the option as sent by the client to which this is a reply
 * S: 32 bits, reply type
 * S: 32 bits, length of the reply. This MAY be zero for some replies
 * S: any data as required by the reply
 */
export function encodeOptionReply(option: number, replyType: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const buf = Buffer.alloc(NBD_OPTION_REPLY_HEADER_SIZE + data.length);
  buf.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  buf.writeUInt32BE(option >>> 0, 8);
  buf.writeUInt32BE(replyType >>> 0, 12);
  buf.writeUInt32BE(data.length, 16);
  buf.set(data, NBD_OPTION_REPLY_HEADER_SIZE);
  return buf;
}

/** Error replies "MAY have some data set, in which case that data is an error message string". */
export function encodeOptionError(option: number, replyType: number, message: string): Buffer {
  return encodeOptionReply(option, replyType, truncateUtf8(message, NBD_MAX_STRING_LENGTH));
}

export interface OptionReply {
  option: number;
  replyType: number;
  data: Buffer;
}

export function decodeOptionReply(buf: Uint8Array): OptionReply {
  const b = asBuffer(buf);
  if (b.length < NBD_OPTION_REPLY_HEADER_SIZE) throw new ProtocolError("short option reply", true);
  if (b.readBigUInt64BE(0) !== NBD_REP_MAGIC) throw new ProtocolError("bad option reply magic", true);
  const length = b.readUInt32BE(16);
  if (b.length < NBD_OPTION_REPLY_HEADER_SIZE + length) throw new ProtocolError("short option reply data", true);
  return {
    option: b.readUInt32BE(8),
    replyType: b.readUInt32BE(12),
    data: b.subarray(NBD_OPTION_REPLY_HEADER_SIZE, NBD_OPTION_REPLY_HEADER_SIZE + length),
  };
}

/**
 * `NBD_REP_SERVER`: 32 bits, length of name; String, name of the export; then "some
 * implementation-specific details about the export ... a string suitable for direct display".
 */
export function encodeRepServerData(name: string, description: string): Buffer {
  const nameBytes = Buffer.from(name, "utf8");
  const descBytes = truncateUtf8(description, NBD_MAX_STRING_LENGTH);
  const buf = Buffer.alloc(4 + nameBytes.length + descBytes.length);
  buf.writeUInt32BE(nameBytes.length, 0);
  nameBytes.copy(buf, 4);
  descBytes.copy(buf, 4 + nameBytes.length);
  return buf;
}

/**
 * `NBD_REPLY_EXPORT_NAME`-style reply ending NBD_OPT_EXPORT_NAME:
 * S: 64 bits, size of the export in bytes (unsigned)
 * S: 16 bits, transmission flags
 * S: 124 bytes, zeroes (reserved) (unless `NBD_FLAG_C_NO_ZEROES` was negotiated by the client)
 */
export function encodeExportNameReply(size: number, transmissionFlags: number, noZeroes: boolean): Buffer {
  const buf = Buffer.alloc(10 + (noZeroes ? 0 : NBD_EXPORT_NAME_ZEROES));
  buf.writeBigUInt64BE(BigInt(size), 0);
  buf.writeUInt16BE(transmissionFlags, 8);
  return buf;
}

export interface InfoRequest {
  name: string;
  /** The `NBD_INFO_*` types the client asked for, in its order. */
  requests: number[];
}

/**
 * Data of NBD_OPT_INFO and NBD_OPT_GO:
 * - 32 bits, length of name (unsigned); MUST be no larger than the option data length - 6
 * - String: name of the export
 * - 16 bits, number of information requests
 * - 16 bits x n - list of `NBD_INFO` information requests
 */
export function decodeInfoRequest(data: Uint8Array): InfoRequest {
  const b = asBuffer(data);
  if (b.length < 6) throw new ProtocolError("option data shorter than 6 bytes");
  const nameLength = b.readUInt32BE(0);
  if (nameLength > b.length - 6) throw new ProtocolError("export name length exceeds option data");
  const name = decodeString(b.subarray(4, 4 + nameLength), "export name");
  const count = b.readUInt16BE(4 + nameLength);
  if (b.length !== 6 + nameLength + 2 * count) throw new ProtocolError("information request count does not match option length");
  const requests: number[] = [];
  for (let i = 0; i < count; i++) requests.push(b.readUInt16BE(6 + nameLength + 2 * i));
  return { name, requests };
}

export function encodeInfoRequest(name: string, requests: number[]): Buffer {
  const nameBytes = Buffer.from(name, "utf8");
  const buf = Buffer.alloc(6 + nameBytes.length + 2 * requests.length);
  buf.writeUInt32BE(nameBytes.length, 0);
  nameBytes.copy(buf, 4);
  buf.writeUInt16BE(requests.length, 4 + nameBytes.length);
  requests.forEach((r, i) => buf.writeUInt16BE(r, 6 + nameBytes.length + 2 * i));
  return buf;
}

/**
 * `NBD_INFO_EXPORT` (length 12): 16 bits, `NBD_INFO_EXPORT`; 64 bits, size of the export in
 * bytes (unsigned); 16 bits, transmission flags
 */
export function encodeInfoExport(size: number, transmissionFlags: number): Buffer {
  const buf = Buffer.alloc(12);
  buf.writeUInt16BE(NBD_INFO_EXPORT, 0);
  buf.writeBigUInt64BE(BigInt(size), 2);
  buf.writeUInt16BE(transmissionFlags, 10);
  return buf;
}

/** `NBD_INFO_NAME`: 16 bits, `NBD_INFO_NAME`; String: name of the export, *length - 2* bytes */
export function encodeInfoName(name: string): Buffer {
  return Buffer.concat([u16(NBD_INFO_NAME), truncateUtf8(name, NBD_MAX_STRING_LENGTH)]);
}

/** `NBD_INFO_DESCRIPTION`: 16 bits, `NBD_INFO_DESCRIPTION`; String: description, *length - 2* bytes */
export function encodeInfoDescription(description: string): Buffer {
  return Buffer.concat([u16(NBD_INFO_DESCRIPTION), truncateUtf8(description, NBD_MAX_STRING_LENGTH)]);
}

export interface BlockSizeConstraints {
  minimum: number;
  preferred: number;
  maximum: number;
}

/**
 * `NBD_INFO_BLOCK_SIZE` (length 14): 16 bits, `NBD_INFO_BLOCK_SIZE`; 32 bits, minimum block size;
 * 32 bits, preferred block size; 32 bits, maximum block size
 */
export function encodeInfoBlockSize(sizes: BlockSizeConstraints): Buffer {
  const buf = Buffer.alloc(14);
  buf.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
  buf.writeUInt32BE(sizes.minimum, 2);
  buf.writeUInt32BE(sizes.preferred, 6);
  buf.writeUInt32BE(sizes.maximum, 10);
  return buf;
}

export function encodeRepInfo(option: number, info: Buffer): Buffer {
  return encodeOptionReply(option, NBD_REP_INFO, info);
}

export function encodeRepServer(option: number, name: string, description: string): Buffer {
  return encodeOptionReply(option, NBD_REP_SERVER, encodeRepServerData(name, description));
}

/** `NBD_REP_META_CONTEXT`: 32 bits, NBD metadata context ID; String, name of the metadata context. */
export function encodeRepMetaContext(option: number, contextId: number, name: string): Buffer {
  const nameBytes = Buffer.from(name, "utf8");
  const data = Buffer.alloc(4 + nameBytes.length);
  data.writeUInt32BE(contextId, 0);
  nameBytes.copy(data, 4);
  return encodeOptionReply(option, NBD_REP_META_CONTEXT, data);
}

export interface MetaContextRequest {
  exportName: string;
  queries: string[];
}

/**
 * Data of NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT:
 * - 32 bits, length of export name; String, name of export
 * - 32 bits, number of queries
 * - Zero or more queries, each being: 32 bits, length of query; String, query
 * "If the option request is syntactically invalid (such as a query length that would require
 * reading beyond the original length given in the option header), the server MUST fail the
 * request with `NBD_REP_ERR_INVALID`."
 */
export function decodeMetaContextRequest(data: Uint8Array): MetaContextRequest {
  const b = asBuffer(data);
  let at = 0;
  const need = (n: number) => {
    if (at + n > b.length) throw new ProtocolError("meta context request exceeds option length");
  };
  need(4);
  const nameLength = b.readUInt32BE(at);
  at += 4;
  need(nameLength);
  const exportName = decodeString(b.subarray(at, at + nameLength), "export name");
  at += nameLength;
  need(4);
  const count = b.readUInt32BE(at);
  at += 4;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    need(4);
    const length = b.readUInt32BE(at);
    at += 4;
    need(length);
    queries.push(decodeString(b.subarray(at, at + length), "query"));
    at += length;
  }
  if (at !== b.length) throw new ProtocolError("trailing bytes after meta context queries");
  return { exportName, queries };
}

export function encodeMetaContextRequest(exportName: string, queries: string[]): Buffer {
  const parts: Buffer[] = [];
  const name = Buffer.from(exportName, "utf8");
  parts.push(u32(name.length), name, u32(queries.length));
  for (const q of queries) {
    const qb = Buffer.from(q, "utf8");
    parts.push(u32(qb.length), qb);
  }
  return Buffer.concat(parts);
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value, 0);
  return b;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value, 0);
  return b;
}

/** UTF-8 bytes of `text`, cut at a character boundary so they fit in `max` bytes. */
export function truncateUtf8(text: string, max: number): Buffer {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= max) return bytes;
  let end = max;
  // Step back over continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
