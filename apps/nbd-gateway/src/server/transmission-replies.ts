/**
 * Reply writing for one connection in transmission: each reply is one Buffer (pooled ones go back
 * once the socket wrote them), and replies of the same event-loop turn are corked into one write.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { NBD_REPLY_FLAG_DONE, NBD_SIMPLE_REPLY_SIZE } from "../protocol/constants";
import { encodeErrorChunk, writeOffsetDataHeader, writeSimpleReplyHeader } from "../protocol/transmission-frames";
import type { RequestHeader } from "../protocol/transmission-frames";
import { toNbdErrno } from "./errno";
import { ReplyBufferPool } from "./reply-buffers";

const COMMAND_NAMES = ["read", "write", "disc", "flush", "trim", "cache", "write_zeroes", "block_status"];

export class ReplyWriter {
  /** Reply buffers: a read's data goes straight into the buffer its reply is sent from. */
  readonly pool = new ReplyBufferPool();
  /** The socket is corked until the end of this callback or event-loop turn. */
  corked = false;
  /** The socket closed: nothing more is written. */
  closed = false;

  constructor(
    private readonly socket: Socket,
    /** Structured replies were negotiated. */
    readonly structured: boolean,
    private readonly logger: Logger,
  ) {}

  /** Corks the socket until uncork(): replies written meanwhile go out in one write. */
  cork(): void {
    this.corked = true;
    this.socket.cork();
  }

  readonly uncork = (): void => {
    this.corked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };

  replyOk(req: RequestHeader): void {
    // "a simple reply MAY be used as a reply to any request other than `NBD_CMD_READ`, but only
    // if the reply has no data payload."
    const buf = this.pool.alloc(NBD_SIMPLE_REPLY_SIZE);
    writeSimpleReplyHeader(buf, 0, 0, req.handleHi, req.handleLo);
    this.send(buf, true);
  }

  replyError(req: RequestHeader, errno: number, message: string): void {
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

  replyFailure(req: RequestHeader, err: unknown): void {
    const errno = toNbdErrno(err, this.logger, {
      command: COMMAND_NAMES[req.type] ?? String(req.type),
      offset: req.offset,
      length: req.length,
    });
    // Internal messages stay in our log; the client gets the errno and a generic text.
    this.replyError(req, errno, "request failed on the server");
  }

  /**
   * A read's whole range as one reply: `buf` holds the data after room for the header this
   * connection uses (simple, or one structured OFFSET_DATA chunk with the DONE flag).
   */
  sendReadData(req: RequestHeader, buf: Buffer): void {
    if (this.structured) writeOffsetDataHeader(buf, 0, NBD_REPLY_FLAG_DONE, req.handleHi, req.handleLo, req.offset, req.length);
    else writeSimpleReplyHeader(buf, 0, 0, req.handleHi, req.handleLo);
    this.send(buf, true);
  }

  /**
   * One write per reply; replies of the same event-loop turn are corked into one syscall.
   * `pooled`: `buf` came from this.pool and goes back to it once the socket wrote it.
   */
  send(buf: Buffer, pooled = false): void {
    if (this.closed || this.socket.destroyed || this.socket.writableEnded) {
      if (pooled) this.pool.release(buf);
      return;
    }
    if (!this.corked) {
      this.cork();
      setImmediate(this.uncork);
    }
    this.socket.write(buf, pooled ? () => this.pool.release(buf) : undefined);
  }
}
