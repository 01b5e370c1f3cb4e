/**
 * The transmission phase of one connection. Requests are parsed synchronously from the
 * connection's FrameReader as bytes arrive and each is started at once, so many are in flight
 * and replies go out in completion order ("Replies need not be sent in the same order as
 * requests"). Each reply is one Buffer (header + data, the device reads straight into it, reused
 * once the socket wrote it; a failed read's buffer is not, since other pieces of that read may still
 * land in it) and replies produced in the same event-loop turn are corked into one socket write.
 * Reading from the socket stops while too many request bytes are in flight, and for the rest of an
 * event-loop turn once the connections together took in that turn's budget (turn-budget.ts).
 * Bytes arrive in a read buffer reused after each read (socket-reads.ts): a WRITE payload is used
 * from it directly when it arrived whole and the device takes it synchronously, else gathered into
 * a pooled buffer as it arrives; nothing else of it is kept past the read callback.
 *
 * Every request passes `validateRequest` first; a refused WRITE's payload is read and discarded
 * and the connection stays open. Only a framing error (bad magic) closes it.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { BlockDevice, WriteOptions } from "@stratus/storage";
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
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
  NBD_REQUEST_SIZE,
  NBD_SIMPLE_REPLY_SIZE,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
} from "../protocol/constants";
import type { FrameReader } from "../protocol/frame-reader";
import { ProtocolError } from "../protocol/handshake-frames";
import {
  OFFSET_DATA_HEADER_SIZE,
  OFFSET_HOLE_CHUNK_SIZE,
  decodeRequestHeader,
  encodeBlockStatusChunk,
  encodeErrorChunk,
  encodeNoneChunk,
  writeOffsetDataHeader,
  writeOffsetHoleChunk,
  writeSimpleReplyHeader,
} from "../protocol/transmission-frames";
import type { BlockStatusDescriptor, RequestHeader } from "../protocol/transmission-frames";
import { toNbdErrno } from "./errno";
import type { Negotiated } from "./handshake";
import { sharedPayloadBuffers } from "./payload-buffers";
import { ReplyBufferPool } from "./reply-buffers";
import type { TurnBudget } from "./turn-budget";
import type { WriteBudget } from "./write-budget";
import { validateRequest } from "./validate";
import type { ValidationContext } from "./validate";

export interface TransmissionOptions {
  logger: Logger;
  maxPayload: number;
  /** Stop reading the socket while this many request bytes (reads + writes) are in flight. */
  maxInFlightBytes: number;
  /** ... or this many requests. */
  maxInFlightRequests: number;
  /** Request bytes per event-loop turn, shared with the other connections. */
  turnBudget: TurnBudget;
  /** WRITE payload bytes in memory, shared with the other connections. */
  writeBudget: WriteBudget;
}

/** More descriptors than this in one BLOCK_STATUS reply are cut ("MAY return fewer descriptors"). */
const MAX_BLOCK_STATUS_DESCRIPTORS = 1 << 16;

/**
 * WRITE payloads at least this large are read straight into their own buffer, and after one of
 * them the next read takes only a request header (see nextReadTarget). Smaller ones come with
 * their header in the shared read buffer: a separate read each would cost more than their copy.
 */
const DIRECT_PAYLOAD_BYTES = 64 * 1024;

/** After ending our side, how long the client has to close its side. */
const END_GRACE_MS = 2_000;

const COMMAND_NAMES = ["read", "write", "disc", "flush", "trim", "cache", "write_zeroes", "block_status"];

interface PendingWrite {
  req: RequestHeader;
  /** Where the payload is gathered (pooled), once it did not arrive whole in one read. */
  payload: Buffer | undefined;
  received: number;
}

export class TransmissionSession {
  /** Resolves once the socket has closed and no request is running on the device. */
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;
  private readonly device: BlockDevice;
  private readonly ctx: ValidationContext;
  private readonly structured: boolean;
  private readonly metaContextId: number;
  private readonly pool = new ReplyBufferPool();
  private inFlight = 0;
  private inFlightBytes = 0;
  private paused = false;
  /** Not reading until the next event-loop turn: this turn's budget is spent (turn-budget.ts). */
  private yielded = false;
  /** No more requests are read (DISC, framing error, server shutdown). */
  private stopping = false;
  private socketClosed = false;
  private corked = false;
  /** A WRITE whose header is parsed and whose payload has not fully arrived. */
  private pendingWrite: PendingWrite | undefined;
  /** A WRITE whose header is parsed, waiting for room in the shared write budget before its payload is read. */
  private deferredWrite: RequestHeader | undefined;
  /** Request headers are decoded from here (synchronously) when they straddle reads. */
  private readonly headerScratch = Buffer.alloc(NBD_REQUEST_SIZE);
  /** Bytes of a refused WRITE's payload still to discard. */
  private skipRemaining = 0;
  /** The last request header was a WRITE of at least DIRECT_PAYLOAD_BYTES: another may follow. */
  private largeWrites = false;

  constructor(
    private readonly socket: Socket,
    private readonly reader: FrameReader,
    negotiated: Negotiated,
    private readonly options: TransmissionOptions,
  ) {
    this.device = negotiated.opened.device;
    this.structured = negotiated.structuredReplies;
    this.metaContextId = negotiated.metaContextId;
    this.ctx = {
      size: this.device.size,
      transmissionFlags: negotiated.transmissionFlags,
      structuredReplies: negotiated.structuredReplies,
      metaContextSelected: negotiated.metaContextId !== 0,
      maxPayload: options.maxPayload,
    };
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    socket.on("drain", this.onDrain);
  }

  /**
   * New bytes are in the reader. Replies answered synchronously while parsing them go out in one
   * write at the end of this callback, not a loop phase later (QD1 latency).
   */
  onData(received = 0): void {
    if (this.stopping) {
      this.reader.skip(this.reader.available);
      return;
    }
    this.options.turnBudget.spend(received);
    if (this.corked) {
      this.pump();
    } else {
      this.corked = true;
      this.socket.cork();
      try {
        this.pump();
      } finally {
        this.corked = false;
        if (!this.socket.destroyed) this.socket.uncork();
      }
    }
    if (this.options.turnBudget.exhausted) this.yieldTurn();
  }

  /** This turn's budget is spent: stop reading until the next turn (what is in the reader stays there). */
  private yieldTurn(): void {
    if (this.yielded || this.paused || this.stopping || this.socketClosed) return;
    this.yielded = true;
    this.socket.pause();
    this.options.turnBudget.waitForNextTurn(this.endYield);
  }

  private readonly endYield = (): void => {
    this.yielded = false;
    // Paused for pressure meanwhile: maybeResume() resumes. Stopping: stopReading() resumed already.
    if (this.paused || this.stopping || this.socketClosed || this.socket.destroyed) return;
    this.socket.resume();
    this.pump();
  };

  /** No request is being served (an idle timeout may end the connection). */
  get idle(): boolean {
    return this.inFlight === 0;
  }

  /** The socket is gone: nothing more is read or written; finish when in-flight requests settle. */
  onClose(): void {
    this.socketClosed = true;
    this.stopping = true;
    // A write whose payload never fully arrived gives its share of the budget back.
    if (this.pendingWrite) {
      this.options.writeBudget.give(this.pendingWrite.req.length);
      this.pendingWrite = undefined;
    }
    this.options.writeBudget.forget(this.onDrain);
    this.maybeFinish();
  }

  /** Server shutdown: stop taking requests, answer the ones in flight, then end the connection. */
  shutdown(): void {
    this.stopReading();
    this.maybeEnd();
  }

  private pump(): void {
    const reader = this.reader;
    while (!this.stopping) {
      if (this.skipRemaining > 0) {
        this.skipRemaining -= reader.skip(this.skipRemaining);
        if (this.skipRemaining > 0) return;
        continue;
      }
      if (this.pendingWrite) {
        if (!this.receivePayload(this.pendingWrite)) return;
        continue;
      }
      if (this.deferredWrite) {
        if (!this.options.writeBudget.tryTake(this.deferredWrite.length)) {
          // No payload is read until the budget has room: reading stops, TCP holds the client back.
          this.paused = true;
          this.socket.pause();
          this.options.writeBudget.whenRelieved(this.onDrain);
          return;
        }
        this.pendingWrite = { req: this.deferredWrite, payload: undefined, received: 0 };
        this.deferredWrite = undefined;
        continue;
      }
      if (this.underPressure()) {
        this.paused = true;
        this.socket.pause();
        return;
      }
      if (reader.available < NBD_REQUEST_SIZE) return;
      let req: RequestHeader;
      try {
        // Decoded at once, so a view of the read buffer will do; a header split across reads is copied.
        let header = reader.view(NBD_REQUEST_SIZE);
        if (header === undefined) {
          header = this.headerScratch;
          reader.copyInto(header, 0, NBD_REQUEST_SIZE);
        }
        req = decodeRequestHeader(header, 0);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (req.type === NBD_CMD_DISC) {
        // "The server MUST handle all outstanding requests ... and close the TCP session."
        this.options.logger.debug("nbd client sent NBD_CMD_DISC");
        this.stopReading();
        this.maybeEnd();
        return;
      }
      const rejection = validateRequest(req, this.ctx);
      if (rejection) {
        this.options.logger.debug({ command: req.type, offset: req.offset, length: req.length, reason: rejection.reason }, "nbd request refused");
        // The payload of a refused write is still on the wire: read and discard it.
        if (req.type === NBD_CMD_WRITE) this.skipRemaining = req.length;
        this.replyError(req, rejection.errno, rejection.reason);
        continue;
      }
      this.largeWrites = req.type === NBD_CMD_WRITE && req.length >= DIRECT_PAYLOAD_BYTES;
      if (req.type === NBD_CMD_WRITE && req.length > 0) {
        this.deferredWrite = req;
        continue;
      }
      this.begin(req, undefined);
    }
  }

  /**
   * Moves what has arrived of a WRITE's payload into place; true once the write has begun. A
   * payload that arrives whole in one socket read is written straight from the read buffer when
   * the device takes it synchronously; otherwise it is gathered, piece by piece as reads arrive
   * (the read buffer is reused after each), into a pooled buffer.
   */
  private receivePayload(pending: PendingWrite): boolean {
    const reader = this.reader;
    const { req } = pending;
    if (pending.payload === undefined) {
      if (reader.available >= req.length) {
        const view = reader.view(req.length);
        if (view !== undefined) {
          this.pendingWrite = undefined;
          this.begin(req, view, true);
          return true;
        }
      }
      pending.payload = sharedPayloadBuffers.acquire(req.length);
    }
    const count = Math.min(reader.available, req.length - pending.received);
    reader.copyInto(pending.payload, pending.received, count);
    pending.received += count;
    if (pending.received < req.length) return false;
    this.pendingWrite = undefined;
    this.begin(req, pending.payload);
    return true;
  }

  /**
   * Where the socket's next read should land (socket-reads.ts), asked after every read: the rest of
   * a large WRITE payload being gathered goes straight into its pooled buffer, which saves copying
   * it out of the shared read buffer; right after a large WRITE the next read takes just one request
   * header, so the payload of the next large WRITE is read in place whole. Anything else: the shared
   * buffer. Only when the reader holds nothing (what it holds comes first).
   */
  nextReadTarget(): Buffer | number | undefined {
    if (this.stopping || this.skipRemaining > 0 || this.reader.available > 0) return undefined;
    const pending = this.pendingWrite;
    if (pending !== undefined) {
      const rest = pending.req.length - pending.received;
      return pending.payload !== undefined && pending.req.length >= DIRECT_PAYLOAD_BYTES && rest > 0 ? pending.payload.subarray(pending.received, pending.req.length) : undefined;
    }
    return this.largeWrites ? NBD_REQUEST_SIZE : undefined;
  }

  /** `bytes` of the pending WRITE's payload were read into the buffer nextReadTarget() gave. */
  onPayloadRead(bytes: number): void {
    const pending = this.pendingWrite;
    if (pending === undefined || pending.payload === undefined) return; // cannot happen: the target was its payload
    pending.received += bytes;
    this.onData(bytes);
  }

  private underPressure(): boolean {
    return (
      this.inFlight >= this.options.maxInFlightRequests ||
      this.inFlightBytes + this.socket.writableLength >= this.options.maxInFlightBytes
    );
  }

  /**
   * `payload`: a WRITE's bytes, in a pooled buffer handed back once the request is done, or, when
   * `inReadBuffer`, a view of the socket's read buffer: fine for an answer given now, copied into a
   * pooled buffer before anything asynchronous.
   */
  private begin(req: RequestHeader, payload: Buffer | undefined, inReadBuffer = false): void {
    this.inFlight++;
    if (req.type === NBD_CMD_READ || req.type === NBD_CMD_WRITE) this.inFlightBytes += req.length;
    if (this.answerNow(req, payload)) {
      if (payload !== undefined && !inReadBuffer) sharedPayloadBuffers.release(payload);
      this.complete(req);
      return;
    }
    let kept = payload;
    if (payload !== undefined && inReadBuffer) {
      kept = sharedPayloadBuffers.acquire(payload.length);
      payload.copy(kept);
    }
    void this.execute(req, kept).finally(() => {
      if (kept !== undefined) sharedPayloadBuffers.release(kept);
    });
  }

  /**
   * Reads of cached data and writes the cache takes at once are answered synchronously, without a
   * promise: a warm 4 KiB request made about six, and with async hooks on (the embedded dashboard's
   * AsyncLocalStorage) their bookkeeping was ~15% of the event loop. False: use execute().
   */
  private answerNow(req: RequestHeader, payload: Buffer | undefined): boolean {
    const device = this.device;
    if (req.length === 0) return false;
    try {
      if (req.type === NBD_CMD_READ && device.readNow !== undefined) {
        const headerSize = this.structured ? OFFSET_DATA_HEADER_SIZE : NBD_SIMPLE_REPLY_SIZE;
        const buf = this.pool.alloc(headerSize + req.length);
        if (!device.readNow(req.offset, buf.subarray(headerSize))) {
          this.pool.release(buf);
          return false;
        }
        this.sendReadData(req, buf);
        return true;
      }
      if (req.type === NBD_CMD_WRITE && (req.flags & NBD_CMD_FLAG_FUA) === 0 && device.writeNow !== undefined) {
        if (!device.writeNow(req.offset, payload!)) return false;
        this.replyOk(req);
        return true;
      }
    } catch (err) {
      this.replyFailure(req, err);
      return true;
    }
    return false;
  }

  private async execute(req: RequestHeader, payload: Buffer | undefined): Promise<void> {
    const device = this.device;
    try {
      switch (req.type) {
        case NBD_CMD_READ:
          if (this.structured) await this.readStructured(req);
          else await this.readSimple(req);
          break;
        case NBD_CMD_WRITE:
          if (req.length > 0) await device.write(req.offset, payload!, writeOptions(req));
          this.replyOk(req);
          break;
        case NBD_CMD_FLUSH:
          await device.flush();
          this.replyOk(req);
          break;
        case NBD_CMD_TRIM:
          if (req.length > 0) await device.trim(req.offset, req.length, writeOptions(req));
          this.replyOk(req);
          break;
        case NBD_CMD_WRITE_ZEROES: {
          const fastZero = (req.flags & NBD_CMD_FLAG_FAST_ZERO) !== 0;
          // "the server MUST fail quickly with `NBD_ENOTSUP` unless the request can be serviced
          // in less time than a corresponding `NBD_CMD_WRITE`".
          if (fastZero && !device.capabilities.canFastZero) {
            this.replyError(req, NBD_ENOTSUP, "fast zero is not supported by this export");
            break;
          }
          if (req.length > 0) {
            await device.writeZeroes(req.offset, req.length, {
              fua: (req.flags & NBD_CMD_FLAG_FUA) !== 0,
              noHole: (req.flags & NBD_CMD_FLAG_NO_HOLE) !== 0,
              fastZero,
            });
          }
          this.replyOk(req);
          break;
        }
        case NBD_CMD_CACHE:
          // "A server MAY advertise `NBD_FLAG_SEND_CACHE` even if the command has no effect";
          // clients exist that send it unadvertised, so a device without a cache just says yes.
          if (req.length > 0 && device.capabilities.canCache) await device.cache(req.offset, req.length);
          this.replyOk(req);
          break;
        case NBD_CMD_BLOCK_STATUS:
          await this.blockStatus(req);
          break;
      }
    } catch (err) {
      this.replyFailure(req, err);
    } finally {
      this.complete(req);
    }
  }

  private replyFailure(req: RequestHeader, err: unknown): void {
    const errno = toNbdErrno(err, this.options.logger, {
      command: COMMAND_NAMES[req.type] ?? String(req.type),
      offset: req.offset,
      length: req.length,
    });
    // Internal messages stay in our log; the client gets the errno and a generic text.
    this.replyError(req, errno, "request failed on the server");
  }

  /**
   * "If structured replies were not negotiated, then a read request MUST always be answered by a
   * simple reply ... If an error occurs, the server ... MUST NOT send any payload". The header is
   * written only after the read succeeded, so a failed read never follows a success header.
   */
  private async readSimple(req: RequestHeader): Promise<void> {
    const buf = this.pool.alloc(NBD_SIMPLE_REPLY_SIZE + req.length);
    if (req.length > 0) await this.device.read(req.offset, buf.subarray(NBD_SIMPLE_REPLY_SIZE));
    this.sendReadData(req, buf);
  }

  /**
   * A read's whole range as one reply: `buf` holds the data after room for the header this
   * connection uses (simple, or one structured OFFSET_DATA chunk with the DONE flag).
   */
  private sendReadData(req: RequestHeader, buf: Buffer): void {
    if (this.structured) writeOffsetDataHeader(buf, 0, NBD_REPLY_FLAG_DONE, req.handleHi, req.handleLo, req.offset, req.length);
    else writeSimpleReplyHeader(buf, 0, 0, req.handleHi, req.handleLo);
    this.send(buf, true);
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
      this.send(encodeNoneChunk(handleHi, handleLo));
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
      const buf = this.pool.alloc(OFFSET_DATA_HEADER_SIZE + length);
      await this.device.read(offset, buf.subarray(OFFSET_DATA_HEADER_SIZE));
      this.sendReadData(req, buf);
      return;
    }
    let total = 0;
    for (let i = 0; i < count; i++) total += holes[i] ? OFFSET_HOLE_CHUNK_SIZE : OFFSET_DATA_HEADER_SIZE + lengths[i]!;
    const buf = this.pool.alloc(total);
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
    this.send(buf, true);
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
    this.send(encodeBlockStatusChunk(NBD_REPLY_FLAG_DONE, req.handleHi, req.handleLo, this.metaContextId, descriptors));
  }

  private replyOk(req: RequestHeader): void {
    // "a simple reply MAY be used as a reply to any request other than `NBD_CMD_READ`, but only
    // if the reply has no data payload."
    const buf = this.pool.alloc(NBD_SIMPLE_REPLY_SIZE);
    writeSimpleReplyHeader(buf, 0, 0, req.handleHi, req.handleLo);
    this.send(buf, true);
  }

  private replyError(req: RequestHeader, errno: number, message: string): void {
    // Structured: "MUST NOT use a simple reply for `NBD_CMD_READ` (even for the case of an early
    // `NBD_EINVAL` due to bad flags)" and "SHOULD prefer sending errors via a structured reply".
    if (this.structured) {
      this.send(encodeErrorChunk(NBD_REPLY_FLAG_DONE, req.handleHi, req.handleLo, errno, message));
    } else {
      const buf = this.pool.alloc(NBD_SIMPLE_REPLY_SIZE);
      writeSimpleReplyHeader(buf, 0, errno, req.handleHi, req.handleLo);
      this.send(buf, true);
    }
  }

  /**
   * One write per reply; replies of the same event-loop turn are corked into one syscall.
   * `pooled`: `buf` came from this.pool and goes back to it once the socket wrote it.
   */
  private send(buf: Buffer, pooled = false): void {
    if (this.socketClosed || this.socket.destroyed || this.socket.writableEnded) {
      if (pooled) this.pool.release(buf);
      return;
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(this.uncork);
    }
    this.socket.write(buf, pooled ? () => this.pool.release(buf) : undefined);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };

  private complete(req: RequestHeader): void {
    this.inFlight--;
    if (req.type === NBD_CMD_READ || req.type === NBD_CMD_WRITE) this.inFlightBytes -= req.length;
    if (req.type === NBD_CMD_WRITE && req.length > 0) this.options.writeBudget.give(req.length);
    if (this.stopping) {
      this.maybeEnd();
      this.maybeFinish();
      return;
    }
    this.maybeResume();
  }

  private readonly onDrain = (): void => {
    this.maybeResume();
  };

  private maybeResume(): void {
    if (!this.paused || this.stopping) return;
    // Resume below half of the limits so we do not flap on every completion.
    if (
      this.inFlight * 2 > this.options.maxInFlightRequests ||
      (this.inFlightBytes + this.socket.writableLength) * 2 > this.options.maxInFlightBytes
    ) {
      return;
    }
    this.paused = false;
    if (this.yielded) return; // endYield() resumes at the next turn
    this.socket.resume();
    this.pump();
  }

  /**
   * No more requests: whatever else arrives is discarded, but the socket keeps reading so the
   * client's close is seen at once (a paused socket reading into the shared buffer stops reading
   * its handle, end of stream included, and would hold the export until END_GRACE_MS).
   */
  private stopReading(): void {
    this.stopping = true;
    this.reader.skip(this.reader.available);
    if (this.paused || this.yielded) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** After DISC or shutdown: end the TCP session once every outstanding request is answered. */
  private maybeEnd(): void {
    if (this.inFlight === 0 && !this.socketClosed && !this.socket.destroyed) {
      this.socket.end();
      // A client that never closes its side must not hold the server's close() forever.
      setTimeout(() => this.socket.destroy(), END_GRACE_MS).unref();
    }
  }

  private maybeFinish(): void {
    if (this.socketClosed && this.inFlight === 0) this.resolveFinished();
  }

  /** A framing error: the stream cannot be trusted any more, so this connection ends. */
  private fail(err: unknown): void {
    const fatal = err instanceof ProtocolError;
    this.options.logger.warn({ err }, fatal ? "nbd framing error, closing connection" : "nbd connection failed");
    this.stopping = true;
    this.socket.destroy();
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
