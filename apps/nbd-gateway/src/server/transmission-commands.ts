/**
 * What each validated transmission request does on the device, and its reply. Cached reads and
 * writes the device takes at once are answered synchronously (`answerNow`); the rest run in
 * `execute`, which reports every request settled to the session.
 */
import type { BlockDevice, WriteOptions } from "@stratus/storage";
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_ENOTSUP,
  NBD_REPLY_FLAG_DONE,
  NBD_SIMPLE_REPLY_SIZE,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
} from "../protocol/constants";
import {
  OFFSET_DATA_HEADER_SIZE,
  OFFSET_HOLE_CHUNK_SIZE,
  encodeBlockStatusChunk,
  encodeNoneChunk,
  writeOffsetDataHeader,
  writeOffsetHoleChunk,
} from "../protocol/transmission-frames";
import type { BlockStatusDescriptor, RequestHeader } from "../protocol/transmission-frames";
import type { ReplyWriter } from "./transmission-replies";

/** More descriptors than this in one BLOCK_STATUS reply are cut ("MAY return fewer descriptors"). */
const MAX_BLOCK_STATUS_DESCRIPTORS = 1 << 16;

export class CommandRunner {
  constructor(
    private readonly device: BlockDevice,
    private readonly replies: ReplyWriter,
    /** The id of the selected base:allocation context (0: none). */
    private readonly metaContextId: number,
    /** Called once a request `execute` ran has been answered. */
    private readonly settled: (req: RequestHeader) => void,
  ) {}

  /**
   * Reads of cached data and writes the cache takes at once are answered synchronously, without a
   * promise, which keeps a warm small request cheap, async hooks included. False: use execute().
   */
  answerNow(req: RequestHeader, payload: Buffer | undefined): boolean {
    const device = this.device;
    const replies = this.replies;
    if (req.length === 0) return false;
    try {
      if (req.type === NBD_CMD_READ && device.readNow !== undefined) {
        const headerSize = replies.structured ? OFFSET_DATA_HEADER_SIZE : NBD_SIMPLE_REPLY_SIZE;
        const buf = replies.pool.alloc(headerSize + req.length);
        if (!device.readNow(req.offset, buf.subarray(headerSize))) {
          replies.pool.release(buf);
          return false;
        }
        replies.sendReadData(req, buf);
        return true;
      }
      if (req.type === NBD_CMD_WRITE && (req.flags & NBD_CMD_FLAG_FUA) === 0 && device.writeNow !== undefined) {
        if (!device.writeNow(req.offset, payload!)) return false;
        replies.replyOk(req);
        return true;
      }
    } catch (err) {
      replies.replyFailure(req, err);
      return true;
    }
    return false;
  }

  async execute(req: RequestHeader, payload: Buffer | undefined): Promise<void> {
    const device = this.device;
    try {
      switch (req.type) {
        case NBD_CMD_READ:
          if (this.replies.structured) await this.readStructured(req);
          else await this.readSimple(req);
          break;
        case NBD_CMD_WRITE:
          if (req.length > 0) await device.write(req.offset, payload!, writeOptions(req));
          this.replies.replyOk(req);
          break;
        case NBD_CMD_FLUSH:
          await device.flush();
          this.replies.replyOk(req);
          break;
        case NBD_CMD_TRIM:
          if (req.length > 0) await device.trim(req.offset, req.length, writeOptions(req));
          this.replies.replyOk(req);
          break;
        case NBD_CMD_WRITE_ZEROES: {
          const fastZero = (req.flags & NBD_CMD_FLAG_FAST_ZERO) !== 0;
          // "the server MUST fail quickly with `NBD_ENOTSUP` unless the request can be serviced
          // in less time than a corresponding `NBD_CMD_WRITE`".
          if (fastZero && !device.capabilities.canFastZero) {
            this.replies.replyError(req, NBD_ENOTSUP, "fast zero is not supported by this export");
            break;
          }
          if (req.length > 0) {
            await device.writeZeroes(req.offset, req.length, {
              fua: (req.flags & NBD_CMD_FLAG_FUA) !== 0,
              noHole: (req.flags & NBD_CMD_FLAG_NO_HOLE) !== 0,
              fastZero,
            });
          }
          this.replies.replyOk(req);
          break;
        }
        case NBD_CMD_CACHE:
          // "A server MAY advertise `NBD_FLAG_SEND_CACHE` even if the command has no effect";
          // clients exist that send it unadvertised, so a device without a cache just says yes.
          if (req.length > 0 && device.capabilities.canCache) await device.cache(req.offset, req.length);
          this.replies.replyOk(req);
          break;
        case NBD_CMD_BLOCK_STATUS:
          await this.blockStatus(req);
          break;
      }
    } catch (err) {
      this.replies.replyFailure(req, err);
    } finally {
      this.settled(req);
    }
  }

  /**
   * "If structured replies were not negotiated, then a read request MUST always be answered by a
   * simple reply ... If an error occurs, the server ... MUST NOT send any payload". The header is
   * written only after the read succeeded, so a failed read never follows a success header.
   */
  private async readSimple(req: RequestHeader): Promise<void> {
    const buf = this.replies.pool.alloc(NBD_SIMPLE_REPLY_SIZE + req.length);
    if (req.length > 0) await this.device.read(req.offset, buf.subarray(NBD_SIMPLE_REPLY_SIZE));
    this.replies.sendReadData(req, buf);
  }

  /**
   * Structured read: holes (ranges the device reports as reading zeros) go out as
   * `NBD_REPLY_TYPE_OFFSET_HOLE`, the rest as `NBD_REPLY_TYPE_OFFSET_DATA`, all chunks in one
   * buffer with `NBD_REPLY_FLAG_DONE` on the last. Chunks are sent only after every read
   * succeeded, so an error is a lone `NBD_REPLY_TYPE_ERROR` chunk.
   */
  private async readStructured(req: RequestHeader): Promise<void> {
    const { offset, length, handleHi, handleLo } = req;
    if (length === 0) {
      this.replies.send(encodeNoneChunk(handleHi, handleLo));
      return;
    }
    const extents = await this.device.blockStatus(offset, length);
    // Segments as parallel arrays of (start, length, hole): no object per segment on the hot path.
    const starts: number[] = [];
    const lengths: number[] = [];
    const holes: boolean[] = [];
    const end = offset + length;
    let at = offset;
    for (const extent of extents) {
      if (at >= end) break;
      const len = Math.min(extent.length, end - at);
      if (len <= 0) continue;
      pushSegment(starts, lengths, holes, at, len, extent.zero);
      at += len;
    }
    if (at < end) pushSegment(starts, lengths, holes, at, end - at, false);

    const count = starts.length;
    if (count === 1 && !holes[0]) {
      const buf = this.replies.pool.alloc(OFFSET_DATA_HEADER_SIZE + length);
      await this.device.read(offset, buf.subarray(OFFSET_DATA_HEADER_SIZE));
      this.replies.sendReadData(req, buf);
      return;
    }
    let total = 0;
    for (let i = 0; i < count; i++) total += holes[i] ? OFFSET_HOLE_CHUNK_SIZE : OFFSET_DATA_HEADER_SIZE + lengths[i]!;
    const buf = this.replies.pool.alloc(total);
    const reads: Promise<void>[] = [];
    let pos = 0;
    for (let i = 0; i < count; i++) {
      const flags = i === count - 1 ? NBD_REPLY_FLAG_DONE : 0;
      const start = starts[i]!;
      const len = lengths[i]!;
      if (holes[i]) {
        pos = writeOffsetHoleChunk(buf, pos, flags, handleHi, handleLo, start, len);
      } else {
        pos = writeOffsetDataHeader(buf, pos, flags, handleHi, handleLo, start, len);
        reads.push(this.device.read(start, buf.subarray(pos, pos + len)));
        pos += len;
      }
    }
    await Promise.all(reads);
    this.replies.send(buf, true);
  }

  /**
   * "the server MUST use a structured reply, containing exactly one chunk of type
   * `NBD_REPLY_TYPE_BLOCK_STATUS` per selected context id". We clip extents to the request (so
   * the sum never exceeds its length) and with `NBD_CMD_FLAG_REQ_ONE` send exactly one.
   */
  private async blockStatus(req: RequestHeader): Promise<void> {
    const { offset, length } = req;
    const extents = await this.device.blockStatus(offset, length);
    const reqOne = (req.flags & NBD_CMD_FLAG_REQ_ONE) !== 0;
    const descriptors: BlockStatusDescriptor[] = [];
    const end = offset + length;
    let at = offset;
    for (const extent of extents) {
      if (at >= end || descriptors.length >= MAX_BLOCK_STATUS_DESCRIPTORS) break;
      const len = Math.min(extent.length, end - at);
      if (len <= 0) continue;
      const flags = (extent.hole ? NBD_STATE_HOLE : 0) | (extent.zero ? NBD_STATE_ZERO : 0);
      const last = descriptors[descriptors.length - 1];
      if (last && last.flags === flags) last.length += len;
      else descriptors.push({ length: len, flags });
      at += len;
    }
    // "the server MUST return at least one status descriptor"; status 0 is always safe.
    if (descriptors.length === 0) descriptors.push({ length, flags: 0 });
    if (reqOne) descriptors.length = 1;
    this.replies.send(encodeBlockStatusChunk(NBD_REPLY_FLAG_DONE, req.handleHi, req.handleLo, this.metaContextId, descriptors));
  }
}

function writeOptions(req: RequestHeader): WriteOptions | undefined {
  return req.flags & NBD_CMD_FLAG_FUA ? { fua: true } : undefined;
}

function pushSegment(starts: number[], lengths: number[], holes: boolean[], start: number, length: number, hole: boolean): void {
  const last = starts.length - 1;
  if (last >= 0 && holes[last] === hole) {
    lengths[last]! += length;
    return;
  }
  starts.push(start);
  lengths.push(length);
  holes.push(hole);
}
