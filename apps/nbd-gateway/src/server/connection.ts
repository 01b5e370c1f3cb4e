/**
 * One accepted socket, from greeting to release: the handshake (`negotiate`, with the STARTTLS
 * upgrade and the credential check), then the transmission phase (`TransmissionSession`), then the
 * export's release once every request it started has settled.
 */
import type net from "node:net";
import type { Logger } from "pino";
import { ProtocolError } from "../protocol/handshake-frames";
import { FrameReader } from "../protocol/frame-reader";
import type { ExportRegistry } from "./export-registry";
import { negotiate } from "./handshake";
import type { HandshakeIo, Negotiated } from "./handshake";
import type { ResolvedOptions } from "./server-options";
import { TlsRefusedError } from "./tls-upgrade";
import { TransmissionSession } from "./transmission";

/** During the handshake: unsent reply bytes past which the next option waits (and reading stops). */
export const HANDSHAKE_REPLY_BACKLOG = 256 * 1024;
/** During the handshake: unread bytes past which reading stops (an option's data is at most 64 KiB). */
export const HANDSHAKE_READ_AHEAD = 128 * 1024;

class ConnectionClosedError extends Error {
  constructor() {
    super("connection closed");
    this.name = "ConnectionClosedError";
  }
}

export class NbdConnection implements HandshakeIo {
  readonly done: Promise<void>;
  /** Set once a TLS client's credential was accepted. */
  credentialId: string | undefined;
  private readonly reader = new FrameReader();
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private session: TransmissionSession | undefined;
  private closed = false;
  private shuttingDown = false;
  private lastActivity: number;
  /** Why the handshake stopped reading: its replies back up, or it holds enough unread bytes. */
  private readonly holds = { replies: false, readAhead: false };
  /** The plain socket, then the TLS socket wrapping it after STARTTLS. */
  private socket: net.Socket;

  constructor(
    socket: net.Socket,
    private readonly options: ResolvedOptions,
    private readonly logger: Logger,
  ) {
    this.socket = socket;
    this.lastActivity = options.clock.now();
    socket.setNoDelay(true);
    this.watch(socket);
    this.done = this.run();
  }

  private watch(socket: net.Socket): void {
    socket.on("error", (err) => this.logger.debug({ err }, "nbd socket error"));
    socket.on("close", () => this.onClose());
  }

  /** Either socket closing ends the connection (the TLS one closes with the plain one under it). */
  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(new ConnectionClosedError());
    this.session?.onClose();
  }

  /** The credential was revoked or expired: a hard disconnect, in-flight requests are not waited for. */
  revoke(): void {
    this.logger.warn({ credentialId: this.credentialId }, "nbd credential revoked or expired, closing its connection");
    this.socket.destroy();
  }

  /**
   * NBD_OPT_STARTTLS accepted: send the ACK in plaintext, wrap the socket, check the credential.
   * "The client MUST NOT send any option until it has received a final reply": bytes already here
   * after STARTTLS are a broken client.
   */
  private async startTls(ack: Buffer): Promise<ExportRegistry> {
    const tls = this.options.tls!;
    if (this.reader.available > 0) throw new ProtocolError("data after NBD_OPT_STARTTLS before its reply", true);
    const plain = this.socket;
    // Nothing more is read in plaintext: the client's TLS hello waits in the kernel for the TLS layer.
    plain.pause();
    await new Promise<void>((resolve, reject) => plain.write(ack, (error) => (error ? reject(error) : resolve())));
    if (this.closed) throw new ConnectionClosedError();
    const { socket, secured } = tls.upgrader.upgrade(plain);
    this.socket = socket;
    this.watch(socket);
    socket.on("data", (chunk: Buffer) => this.onBytes(chunk, false));
    const presented = await secured;
    const client = await tls.authorize(presented);
    if (!client) throw new TlsRefusedError("unknown, revoked or expired credential");
    if (this.options.connectionsOf(client.credentialId) >= this.options.maxConnectionsPerCredential) {
      throw new TlsRefusedError(`credential ${client.credentialId} already has ${this.options.maxConnectionsPerCredential} connections`);
    }
    this.credentialId = client.credentialId;
    this.logger.info({ credentialId: client.credentialId, tlsVersion: socket.getProtocol() }, "nbd client authenticated over TLS");
    return client.registry;
  }

  /** Bytes from the socket (see socket-reads.ts): a transient chunk is consumed or kept before returning. */
  onBytes(chunk: Buffer, transient: boolean): void {
    this.lastActivity = this.options.clock.now();
    if (transient) this.reader.pushTransient(chunk);
    else this.reader.push(chunk);
    try {
      if (this.session) {
        this.session.onData(chunk.length);
      } else {
        this.wake();
        if (this.reader.available > HANDSHAKE_READ_AHEAD) this.hold("readAhead", true);
      }
    } finally {
      this.reader.keepRemainder();
    }
  }

  /** Where the socket's next read goes (see socket-reads.ts): only a transmission session has a say. */
  nextReadTarget(): Buffer | number | undefined {
    return this.session?.nextReadTarget();
  }

  /** Bytes read into the target nextReadTarget() gave. */
  onTargetRead(bytes: number): void {
    this.session?.onPayloadRead(bytes);
  }

  readExact(n: number): Promise<Buffer> {
    if (this.reader.available - n <= HANDSHAKE_READ_AHEAD) this.hold("readAhead", false);
    if (this.reader.available >= n) return Promise.resolve(this.reader.take(n));
    if (this.closed) return Promise.reject(new ConnectionClosedError());
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
    });
  }

  write(data: Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(data);
  }

  async repliesSent(): Promise<void> {
    // One option per event-loop turn: a client whose options arrive back to back (each answered from
    // the database) must not keep every other connection waiting.
    await new Promise((resolve) => setImmediate(resolve));
    const socket = this.socket;
    if (socket.writableLength <= HANDSHAKE_REPLY_BACKLOG || this.closed) return;
    this.hold("replies", true);
    try {
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          socket.off("drain", done);
          socket.off("close", done);
          if (this.closed) reject(new ConnectionClosedError());
          else resolve();
        };
        socket.on("drain", done);
        socket.on("close", done);
      });
    } finally {
      this.hold("replies", false);
    }
  }

  /** Stops or restarts reading the socket during the handshake; it reads while nothing holds it. */
  private hold(reason: keyof NbdConnection["holds"], on: boolean): void {
    if (this.holds[reason] === on) return;
    this.holds[reason] = on;
    if (this.closed || this.socket.destroyed) return;
    if (this.holds.replies || this.holds.readAhead) this.socket.pause();
    else this.socket.resume();
  }

  shutdown(): void {
    this.shuttingDown = true;
    if (this.session) this.session.shutdown();
    else this.socket.destroy();
  }

  private wake(): void {
    const waiter = this.waiter;
    if (waiter && this.reader.available >= waiter.n) {
      this.waiter = undefined;
      waiter.resolve(this.reader.take(waiter.n));
    }
  }

  private async run(): Promise<void> {
    const negotiated = await this.handshake();
    if (!negotiated) return;
    const { opened } = negotiated;
    try {
      if (this.closed || this.shuttingDown) {
        this.socket.destroy();
        return;
      }
      this.logger.info(
        { exportName: opened.name, structuredReplies: negotiated.structuredReplies, flags: negotiated.transmissionFlags },
        "nbd client entered transmission",
      );
      // The session decides about reading from here on.
      this.hold("replies", false);
      this.hold("readAhead", false);
      this.session = new TransmissionSession(this.socket, this.reader, negotiated, {
        logger: this.logger,
        maxPayload: this.options.maxPayload,
        maxInFlightBytes: this.options.maxInFlightBytes,
        maxInFlightRequests: this.options.maxInFlightRequests,
        turnBudget: this.options.turnBudget,
        writeBudget: this.options.writeBudget,
      });
      // Requests the client pipelined behind GO may already be buffered.
      this.session.onData();
      // Fenced (another holder took the volume): requests already fail; the connection goes too.
      opened.onRevoked?.(() => {
        this.logger.warn({ exportName: opened.name }, "nbd export taken away (fenced), closing its connection");
        this.socket.destroy();
      });
      opened.onHandoff?.(() => {
        this.logger.info({ exportName: opened.name }, "nbd export handed over to another device: disconnecting this client");
        this.session?.handOff();
      });
      const idleTimer = this.watchIdle();
      try {
        await this.session.finished;
      } finally {
        idleTimer.stop();
      }
    } finally {
      try {
        await opened.release();
      } catch (err) {
        this.logger.error({ err, exportName: opened.name }, "releasing nbd export failed");
      }
      this.logger.debug({ exportName: opened.name }, "nbd connection ended");
    }
  }

  /** Ends the session gracefully once no request has come for idleTimeoutMs and none is being served. */
  private watchIdle(): { stop(): void } {
    const { clock, idleTimeoutMs } = this.options;
    let handle: unknown;
    let stopped = idleTimeoutMs <= 0;
    const check = () => {
      if (stopped || !this.session) return;
      const idleFor = clock.now() - this.lastActivity;
      if (idleFor >= idleTimeoutMs && this.session.idle) {
        this.logger.info({ idleTimeoutMs }, "nbd connection idle, closing it");
        this.session.shutdown();
        return;
      }
      handle = clock.setTimeout(check, Math.max(1, idleTimeoutMs - idleFor));
    };
    if (!stopped) handle = clock.setTimeout(check, idleTimeoutMs);
    return {
      stop: () => {
        stopped = true;
        if (handle !== undefined) clock.clearTimeout(handle);
      },
    };
  }

  private async handshake(): Promise<Negotiated | undefined> {
    const timer = this.options.clock.setTimeout(() => {
      this.logger.warn({ timeoutMs: this.options.handshakeTimeoutMs }, "nbd handshake timed out, closing connection");
      this.socket.destroy();
    }, this.options.handshakeTimeoutMs);
    try {
      const tls = this.options.tls;
      const negotiated = await negotiate(this, {
        registry: this.options.registry,
        tls: tls && { required: tls.mode === "require", upgrade: (ack) => this.startTls(ack) },
        logger: this.logger,
        maxPayload: this.options.maxPayload,
        clientAddress: this.socket.remoteAddress,
      });
      // NBD_OPT_ABORT: the client drops the connection; we end our side too.
      if (!negotiated) this.socket.end();
      return negotiated;
    } catch (err) {
      if (err instanceof ConnectionClosedError) {
        this.logger.debug("nbd client left during handshake");
      } else if (err instanceof TlsRefusedError) {
        this.logger.warn({ err }, "nbd TLS client refused, closing connection");
      } else {
        this.logger.warn({ err }, "nbd handshake failed, closing connection");
      }
      this.socket.destroy();
      return undefined;
    } finally {
      this.options.clock.clearTimeout(timer);
    }
  }
}
