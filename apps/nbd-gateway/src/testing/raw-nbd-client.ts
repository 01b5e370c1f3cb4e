/**
 * A minimal NBD client over a raw socket for tests that need to send exactly the bytes they
 * want (malformed frames, truncated frames, vanishing mid-write) and read the server's answer.
 */
import { once } from "node:events";
import net from "node:net";
import tls from "node:tls";
import { FrameReader } from "../protocol/frame-reader";
import {
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_GREETING_SIZE,
  NBD_OPTION_REPLY_HEADER_SIZE,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_INFO,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_HEADER_SIZE,
  NBD_STRUCTURED_REPLY_MAGIC,
  NBD_REPLY_FLAG_DONE,
  NBD_META_CONTEXT_BASE_ALLOCATION,
} from "../protocol/constants";
import { decodeGreeting, decodeOptionReply, encodeInfoRequest, encodeMetaContextRequest, encodeOption } from "../protocol/handshake-frames";
import type { OptionReply } from "../protocol/handshake-frames";
import { encodeRequest } from "../protocol/transmission-frames";

export interface SimpleReply {
  kind: "simple";
  error: number;
  handle: number;
}

export interface StructuredChunk {
  kind: "structured";
  flags: number;
  type: number;
  handle: number;
  payload: Buffer;
}

export class RawNbdClient {
  private readonly reader = new FrameReader();
  private waiter: (() => void) | undefined;
  private closedFlag = false;
  readonly closed: Promise<void>;

  private readonly onData = (chunk: Buffer) => {
    this.reader.push(chunk);
    this.waiter?.();
  };

  private constructor(public socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on("data", this.onData);
    socket.on("error", () => {});
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.closedFlag = true;
        this.waiter?.();
        resolve();
      }),
    );
  }

  /** NBD_OPT_STARTTLS, then a TLS handshake with `options` (PSK or certificates); reads go through TLS after. */
  async startTls(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    const [reply] = await this.option(NBD_OPT_STARTTLS);
    if (reply?.replyType !== NBD_REP_ACK) throw new Error(`STARTTLS answered ${reply?.replyType.toString(16) ?? "nothing"}`);
    this.socket.off("data", this.onData);
    const secure = tls.connect({ ...options, socket: this.socket });
    secure.on("data", this.onData);
    secure.on("error", () => {});
    await Promise.race([
      once(secure, "secureConnect"),
      this.closed.then(() => {
        throw new Error("closed during the TLS handshake");
      }),
    ]);
    this.socket = secure;
    return secure;
  }

  static connect(port: number): Promise<RawNbdClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => resolve(new RawNbdClient(socket)));
      socket.once("error", reject);
    });
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  send(data: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** Exactly `n` bytes, or `undefined` if the server closes first. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.reader.available < n) {
      if (this.closedFlag) return undefined;
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
    }
    return this.reader.take(n);
  }

  /** Reads the greeting and answers with fixed-newstyle + no-zeroes client flags. */
  async greet(clientFlags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES): Promise<number> {
    const greeting = await this.read(NBD_GREETING_SIZE);
    if (!greeting) throw new Error("closed before greeting");
    const { handshakeFlags } = decodeGreeting(greeting);
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(clientFlags >>> 0, 0);
    this.send(flags);
    return handshakeFlags;
  }

  async readOptionReply(): Promise<OptionReply | undefined> {
    const header = await this.read(NBD_OPTION_REPLY_HEADER_SIZE);
    if (!header) return undefined;
    const length = header.readUInt32BE(16);
    const data = await this.read(length);
    if (!data) return undefined;
    return decodeOptionReply(Buffer.concat([header, data]));
  }

  /** Sends an option and collects replies until a final one (ACK or error). */
  async option(option: number, data?: Uint8Array): Promise<OptionReply[]> {
    this.send(encodeOption(option, data));
    const replies: OptionReply[] = [];
    for (;;) {
      const reply = await this.readOptionReply();
      if (!reply) return replies;
      replies.push(reply);
      if (reply.replyType === NBD_REP_ACK || reply.replyType >= 0x80000000) return replies;
    }
  }

  /** Greets, negotiates structured replies (optionally) and base:allocation, and GOes. */
  async goTo(name: string, options: { structured?: boolean; greeted?: boolean } = {}): Promise<{ size: number; flags: number }> {
    if (!options.greeted) await this.greet();
    if (options.structured) {
      await this.option(NBD_OPT_STRUCTURED_REPLY);
      await this.option(NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest(name, [NBD_META_CONTEXT_BASE_ALLOCATION]));
    }
    const replies = await this.option(NBD_OPT_GO, encodeInfoRequest(name, []));
    const last = replies[replies.length - 1];
    if (!last || last.replyType !== NBD_REP_ACK) throw new Error(`GO failed: ${last?.replyType.toString(16)}`);
    const info = replies.find((r) => r.replyType === NBD_REP_INFO && r.data.readUInt16BE(0) === 0)!;
    return { size: Number(info.data.readBigUInt64BE(2)), flags: info.data.readUInt16BE(10) };
  }

  request(type: number, flags: number, handle: number, offset: number, length: number, payload?: Uint8Array): void {
    this.send(encodeRequest(type, flags, handle, offset, length, payload));
  }

  /** Reads one simple reply (with `dataLength` bytes of data on success) or one structured chunk. */
  async readReply(dataLength = 0): Promise<(SimpleReply & { data?: Buffer }) | StructuredChunk | undefined> {
    const magicBytes = await this.read(4);
    if (!magicBytes) return undefined;
    const magic = magicBytes.readUInt32BE(0);
    if (magic === NBD_SIMPLE_REPLY_MAGIC) {
      const rest = await this.read(12);
      if (!rest) return undefined;
      const error = rest.readUInt32BE(0);
      const handle = Number(rest.readBigUInt64BE(4));
      if (error === 0 && dataLength > 0) {
        const data = await this.read(dataLength);
        if (!data) return undefined;
        return { kind: "simple", error, handle, data };
      }
      return { kind: "simple", error, handle };
    }
    if (magic === NBD_STRUCTURED_REPLY_MAGIC) {
      const rest = await this.read(NBD_STRUCTURED_REPLY_HEADER_SIZE - 4);
      if (!rest) return undefined;
      const length = rest.readUInt32BE(12);
      const payload = await this.read(length);
      if (!payload) return undefined;
      return { kind: "structured", flags: rest.readUInt16BE(0), type: rest.readUInt16BE(2), handle: Number(rest.readBigUInt64BE(4)), payload };
    }
    throw new Error(`unexpected reply magic 0x${magic.toString(16)}`);
  }

  /** All chunks of one structured reply (until NBD_REPLY_FLAG_DONE). */
  async readStructuredReply(): Promise<StructuredChunk[] | undefined> {
    const chunks: StructuredChunk[] = [];
    for (;;) {
      const chunk = await this.readReply();
      if (!chunk) return undefined;
      if (chunk.kind !== "structured") throw new Error("expected a structured chunk");
      chunks.push(chunk);
      if (chunk.flags & NBD_REPLY_FLAG_DONE) return chunks;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
