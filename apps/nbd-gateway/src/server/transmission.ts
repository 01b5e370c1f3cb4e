/**
 * The transmission phase of one connection: requests are parsed synchronously as bytes arrive and
 * each is started at once, so many are in flight and replies go out in completion order. Reading
 * stops while too much is in flight or this event-loop turn's budget is spent (turn-budget.ts).
 * A WRITE payload is used straight from the read buffer when it arrived whole, else gathered into
 * a pooled buffer. Every request passes `validateRequest`; a refused WRITE's payload is discarded
 * and the connection stays open. Only a framing error (bad magic) closes it. A handoff (handOff)
 * drains what is in flight and answers the rest NBD_ESHUTDOWN.
 * Over our ~400-line aim on purpose: reading, budgets, in-flight accounting and the ways a session
 * ends (DISC, shutdown, handoff, close) share the same state, which one class keeps consistent.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { BlockDevice } from "@stratus/storage";
import { NBD_CMD_DISC, NBD_CMD_WRITE, NBD_ESHUTDOWN, NBD_REQUEST_SIZE } from "../protocol/constants";
import type { FrameReader } from "../protocol/frame-reader";
import { ProtocolError } from "../protocol/handshake-frames";
import { decodeRequestHeader } from "../protocol/transmission-frames";
import type { RequestHeader } from "../protocol/transmission-frames";
import type { Negotiated } from "./handshake";
import { InFlight } from "./in-flight";
import { sharedPayloadBuffers } from "./payload-buffers";
import { CommandRunner } from "./transmission-commands";
import { ReplyWriter } from "./transmission-replies";
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

/**
 * WRITE payloads at least this large are read straight into their own buffer, and after one of
 * them the next read takes only a request header (see nextReadTarget). Smaller ones come with
 * their header in the shared read buffer: a separate read each would cost more than their copy.
 */
const DIRECT_PAYLOAD_BYTES = 64 * 1024;

/** After ending our side, how long the client has to close its side. */
const END_GRACE_MS = 2_000;
/** Handing over: how long a client told NBD_ESHUTDOWN has to send its DISC before we end the session. */
const HANDOFF_DISC_GRACE_MS = 1_000;
/** Handing over, nothing in flight and nothing refused yet: how long a request may still come to be told. */
const HANDOFF_LAST_CALL_MS = 50;

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
  private readonly ctx: ValidationContext;
  private readonly replies: ReplyWriter;
  private readonly commands: CommandRunner;
  private readonly inFlight: InFlight;
  private paused = false;
  /** Not reading until the next event-loop turn: this turn's budget is spent (turn-budget.ts). */
  private yielded = false;
  /** No more requests are read (DISC, framing error, server shutdown). */
  private stopping = false;
  private socketClosed = false;
  /** Handing the export over (handOff): draining what is in flight, then a grace for the client's DISC. */
  private handoff: "no" | "draining" | "grace" = "no";
  /** NBD_ESHUTDOWN replies sent: such a client MUST disconnect, so it gets a moment to send DISC. */
  private shutdownReplies = 0;
  private handoffTimer: NodeJS.Timeout | undefined;
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
    const device: BlockDevice = negotiated.opened.device;
    this.replies = new ReplyWriter(socket, negotiated.structuredReplies, options.logger);
    this.commands = new CommandRunner(device, this.replies, negotiated.metaContextId, this.complete);
    this.inFlight = new InFlight(options.maxInFlightRequests, options.maxInFlightBytes);
    this.ctx = {
      size: device.size,
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
    if (this.replies.corked) {
      this.pump();
    } else {
      this.replies.cork();
      try {
        this.pump();
      } finally {
        this.replies.uncork();
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
    return this.inFlight.requests === 0;
  }

  /** The socket is gone: nothing more is read or written; finish when in-flight requests settle. */
  onClose(): void {
    this.socketClosed = true;
    this.replies.closed = true;
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

  /**
   * The export is being handed to another device: requests already in flight are served, every later
   * one is answered NBD_ESHUTDOWN ("the client MUST initiate a soft disconnect"), and once nothing is
   * in flight the session ends: after a 50 ms last call for a client that was told nothing, after its
   * DISC (or a 1 s grace) for one that was.
   */
  handOff(): void {
    if (this.stopping || this.handoff !== "no") return;
    this.handoff = "draining";
    this.maybeEndHandoff();
  }

  private maybeEndHandoff(): void {
    if (this.handoff !== "draining" || this.stopping || this.inFlight.requests > 0) return;
    this.handoff = "grace";
    // A client that sends its next request right after a reply gets NBD_ESHUTDOWN rather than a closed socket.
    this.endHandoffIn(this.shutdownReplies > 0 ? HANDOFF_DISC_GRACE_MS : HANDOFF_LAST_CALL_MS);
  }

  private endHandoffIn(ms: number): void {
    if (this.handoffTimer !== undefined) clearTimeout(this.handoffTimer);
    this.handoffTimer = setTimeout(() => {
      if (this.stopping) return;
      this.stopReading();
      this.maybeEnd();
    }, ms);
    this.handoffTimer.unref();
  }

  /** A request that came after the handoff began: answered NBD_ESHUTDOWN, its payload and budget given back. */
  private refuseForHandoff(req: RequestHeader, payload: Buffer | undefined, inReadBuffer: boolean): void {
    if (payload !== undefined && !inReadBuffer) sharedPayloadBuffers.release(payload);
    if (req.type === NBD_CMD_WRITE && req.length > 0) this.options.writeBudget.give(req.length);
    this.shutdownReplies += 1;
    this.replies.replyError(req, NBD_ESHUTDOWN, "the volume is being handed over to another device: disconnect");
    // Told to go, the client gets its moment to send DISC.
    if (this.handoff === "grace" && this.shutdownReplies === 1) this.endHandoffIn(HANDOFF_DISC_GRACE_MS);
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
      if (this.inFlight.full(this.socket.writableLength)) {
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
        this.replies.replyError(req, rejection.errno, rejection.reason);
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
      return pending.payload !== undefined && pending.req.length >= DIRECT_PAYLOAD_BYTES && rest > 0
        ? pending.payload.subarray(pending.received, pending.req.length)
        : undefined;
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

  /**
   * `payload`: a WRITE's bytes, in a pooled buffer handed back once the request is done, or, when
   * `inReadBuffer`, a view of the socket's read buffer: fine for an answer given now, copied into a
   * pooled buffer before anything asynchronous.
   */
  private begin(req: RequestHeader, payload: Buffer | undefined, inReadBuffer = false): void {
    if (this.handoff !== "no") {
      this.refuseForHandoff(req, payload, inReadBuffer);
      return;
    }
    this.inFlight.add(req);
    if (this.commands.answerNow(req, payload)) {
      if (payload !== undefined && !inReadBuffer) sharedPayloadBuffers.release(payload);
      this.complete(req);
      return;
    }
    let kept = payload;
    if (payload !== undefined && inReadBuffer) {
      kept = sharedPayloadBuffers.acquire(payload.length);
      payload.copy(kept);
    }
    void this.commands.execute(req, kept).finally(() => {
      if (kept !== undefined) sharedPayloadBuffers.release(kept);
    });
  }

  /** A request was answered (execute() settled, or answerNow() answered it). */
  private readonly complete = (req: RequestHeader): void => {
    this.inFlight.remove(req);
    if (req.type === NBD_CMD_WRITE && req.length > 0) this.options.writeBudget.give(req.length);
    if (this.stopping) {
      this.maybeEnd();
      this.maybeFinish();
      return;
    }
    this.maybeEndHandoff();
    this.maybeResume();
  };

  private readonly onDrain = (): void => {
    this.maybeResume();
  };

  private maybeResume(): void {
    if (!this.paused || this.stopping) return;
    if (!this.inFlight.belowHalf(this.socket.writableLength)) return;
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
    if (this.inFlight.requests === 0 && !this.socketClosed && !this.socket.destroyed) {
      this.socket.end();
      // A client that never closes its side must not hold the server's close() forever.
      setTimeout(() => this.socket.destroy(), END_GRACE_MS).unref();
    }
  }

  private maybeFinish(): void {
    if (this.socketClosed && this.inFlight.requests === 0) this.resolveFinished();
  }

  /** A framing error: the stream cannot be trusted any more, so this connection ends. */
  private fail(err: unknown): void {
    const fatal = err instanceof ProtocolError;
    this.options.logger.warn({ err }, fatal ? "nbd framing error, closing connection" : "nbd connection failed");
    this.stopping = true;
    this.socket.destroy();
  }
}
