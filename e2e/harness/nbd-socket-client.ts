/**
 * A small NBD client over a real TCP socket, for tests that must know exactly which request the
 * server acknowledged before it died (the crash tests): fixed newstyle handshake, NBD_OPT_GO,
 * simple replies only (no structured replies are negotiated, so every reply is one 16-byte header
 * plus, for a successful READ, exactly `length` bytes), READ/WRITE/FLUSH/TRIM/DISC, many in flight.
 *
 * When the connection goes away every request still in flight rejects with NbdDisconnectedError:
 * "not acknowledged" is exactly what a crash test needs to tell apart from "acknowledged".
 */
import net from "node:net";

// Quoted from the NBD protocol document (doc/proto.md).
const NBDMAGIC = Buffer.from("NBDMAGIC", "latin1");
const IHAVEOPT = 0x49484156454f5054n;
const REPLY_MAGIC_OPT = 0x3e889045565a9n;
const NBD_FLAG_FIXED_NEWSTYLE = 1;
const NBD_FLAG_NO_ZEROES = 2;
const NBD_OPT_GO = 7;
const NBD_REP_ACK = 1;
const NBD_REP_INFO = 3;
const NBD_INFO_EXPORT = 0;
const NBD_REQUEST_MAGIC = 0x25609513;
const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
const NBD_CMD_READ = 0;
const NBD_CMD_WRITE = 1;
const NBD_CMD_DISC = 2;
const NBD_CMD_FLUSH = 3;
const NBD_CMD_TRIM = 4;
const NBD_CMD_FLAG_FUA = 1;

/** The server answered a request with a non-zero NBD error (errno value, e.g. 5 = EIO). */
export class NbdRequestError extends Error {
  constructor(
    readonly command: string,
    readonly errno: number,
  ) {
    super(`NBD ${command} failed with errno ${errno}`);
    this.name = "NbdRequestError";
  }
}

/** The connection ended before the request was answered: the server may or may not have done it. */
export class NbdDisconnectedError extends Error {
  constructor(readonly command: string) {
    super(`NBD connection closed before ${command} was answered`);
    this.name = "NbdDisconnectedError";
  }
}

interface Pending {
  command: string;
  /** For READ: where the data goes. */
  readInto?: Buffer;
  resolve: (data: Buffer | undefined) => void;
  reject: (error: Error) => void;
}

export interface NbdSocketClient {
  readonly size: number;
  readonly flags: number;
  read(offset: number, length: number): Promise<Buffer>;
  write(offset: number, data: Buffer, options?: { fua?: boolean }): Promise<void>;
  flush(): Promise<void>;
  trim(offset: number, length: number): Promise<void>;
  /** Sends NBD_CMD_DISC after the requests in flight, then closes. */
  close(): Promise<void>;
  /** Drops the connection at once (requests in flight reject). */
  destroy(): void;
  /** Requests sent and not yet answered. */
  readonly inFlight: number;
}

/** Connects to 127.0.0.1:port and opens `exportName` with NBD_OPT_GO. */
export async function connectNbd(port: number, exportName: string, { timeoutMs = 30_000 } = {}): Promise<NbdSocketClient> {
  const socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
  const reader = new ByteReader(socket);
  const timer = setTimeout(() => socket.destroy(new Error(`NBD handshake with ${exportName} timed out`)), timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const greeting = await reader.take(18);
    if (!greeting.subarray(0, 8).equals(NBDMAGIC) || greeting.readBigUInt64BE(8) !== IHAVEOPT) {
      throw new Error("not an NBD fixed newstyle server");
    }
    const serverFlags = greeting.readUInt16BE(16);
    if ((serverFlags & NBD_FLAG_FIXED_NEWSTYLE) === 0) throw new Error("server lacks fixed newstyle");
    const clientFlags = Buffer.alloc(4);
    clientFlags.writeUInt32BE(NBD_FLAG_FIXED_NEWSTYLE | (serverFlags & NBD_FLAG_NO_ZEROES));
    socket.write(clientFlags);

    const name = Buffer.from(exportName, "utf8");
    const data = Buffer.alloc(4 + name.length + 2);
    data.writeUInt32BE(name.length, 0);
    name.copy(data, 4);
    data.writeUInt16BE(0, 4 + name.length); // no info requests: NBD_INFO_EXPORT comes anyway
    const option = Buffer.alloc(16);
    option.writeBigUInt64BE(IHAVEOPT, 0);
    option.writeUInt32BE(NBD_OPT_GO, 8);
    option.writeUInt32BE(data.length, 12);
    socket.write(Buffer.concat([option, data]));

    let size = -1;
    let flags = 0;
    for (;;) {
      const head = await reader.take(20);
      if (head.readBigUInt64BE(0) !== REPLY_MAGIC_OPT) throw new Error("bad option reply magic");
      const type = head.readUInt32BE(12);
      const body = await reader.take(head.readUInt32BE(16));
      if (type === NBD_REP_ACK) break;
      if (type === NBD_REP_INFO && body.readUInt16BE(0) === NBD_INFO_EXPORT) {
        size = Number(body.readBigUInt64BE(2));
        flags = body.readUInt16BE(10);
      } else if (type >= 0x80000000) {
        throw new Error(`NBD_OPT_GO ${exportName}: error reply 0x${type.toString(16)} ${body.toString("utf8")}`);
      }
    }
    if (size < 0) throw new Error("NBD_OPT_GO acknowledged without NBD_INFO_EXPORT");
    clearTimeout(timer);
    return new Transmission(socket, reader, size, flags);
  } catch (error) {
    clearTimeout(timer);
    socket.destroy();
    throw error;
  }
}

class Transmission implements NbdSocketClient {
  readonly #pending = new Map<number, Pending>();
  #nextHandle = 1;
  #closed = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly reader: ByteReader,
    readonly size: number,
    readonly flags: number,
  ) {
    socket.on("error", () => {}); // the close handler below rejects what is pending
    socket.once("close", () => this.#fail());
    void this.#readReplies();
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  read(offset: number, length: number): Promise<Buffer> {
    const into = Buffer.allocUnsafe(length);
    return this.#send(NBD_CMD_READ, 0, offset, length, undefined, into).then(() => into);
  }

  async write(offset: number, data: Buffer, { fua = false } = {}): Promise<void> {
    await this.#send(NBD_CMD_WRITE, fua ? NBD_CMD_FLAG_FUA : 0, offset, data.length, data);
  }

  async flush(): Promise<void> {
    await this.#send(NBD_CMD_FLUSH, 0, 0, 0);
  }

  async trim(offset: number, length: number): Promise<void> {
    await this.#send(NBD_CMD_TRIM, 0, offset, length);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.allSettled([...this.#pending.values()].map((p) => new Promise((r) => ((p.resolve = r), (p.reject = r)))));
    const header = requestHeader(NBD_CMD_DISC, 0, 0, 0, 0);
    this.#closed = true;
    await new Promise<void>((resolve) => {
      this.socket.once("close", () => resolve());
      this.socket.end(header);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  #send(type: number, flags: number, offset: number, length: number, data?: Buffer, readInto?: Buffer): Promise<Buffer | undefined> {
    const command = ["READ", "WRITE", "DISC", "FLUSH", "TRIM"][type] ?? String(type);
    if (this.#closed || this.socket.destroyed) return Promise.reject(new NbdDisconnectedError(command));
    const handle = this.#nextHandle++;
    return new Promise((resolve, reject) => {
      this.#pending.set(handle, { command, readInto, resolve, reject });
      const header = requestHeader(type, flags, handle, offset, length);
      this.socket.write(data ? Buffer.concat([header, data]) : header);
    });
  }

  async #readReplies(): Promise<void> {
    try {
      for (;;) {
        const head = await this.reader.take(16);
        if (head.readUInt32BE(0) !== NBD_SIMPLE_REPLY_MAGIC) throw new Error("bad reply magic");
        const errno = head.readUInt32BE(4);
        const handle = Number(head.readBigUInt64BE(8));
        const pending = this.#pending.get(handle);
        if (!pending) throw new Error(`reply for unknown handle ${handle}`);
        if (errno === 0 && pending.readInto) {
          const data = await this.reader.take(pending.readInto.length);
          data.copy(pending.readInto);
        }
        this.#pending.delete(handle);
        if (errno !== 0) pending.reject(new NbdRequestError(pending.command, errno));
        else pending.resolve(pending.readInto);
      }
    } catch {
      this.socket.destroy();
      this.#fail();
    }
  }

  #fail(): void {
    this.#closed = true;
    for (const [handle, pending] of this.#pending) {
      this.#pending.delete(handle);
      pending.reject(new NbdDisconnectedError(pending.command));
    }
  }
}

function requestHeader(type: number, flags: number, handle: number, offset: number, length: number): Buffer {
  const header = Buffer.alloc(28);
  header.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  header.writeUInt16BE(flags, 4);
  header.writeUInt16BE(type, 6);
  header.writeBigUInt64BE(BigInt(handle), 8);
  header.writeBigUInt64BE(BigInt(offset), 16);
  header.writeUInt32BE(length, 24);
  return header;
}

/** Takes exact byte counts from a socket's stream of chunks (no re-concatenation of the whole buffer). */
class ByteReader {
  readonly #chunks: Buffer[] = [];
  #available = 0;
  #waiter: { need: number; resolve: () => void; reject: (e: Error) => void } | undefined;
  #ended: Error | undefined;

  constructor(socket: net.Socket) {
    socket.on("data", (data: Buffer) => {
      this.#chunks.push(data);
      this.#available += data.length;
      if (this.#waiter && this.#available >= this.#waiter.need) this.#waiter.resolve();
    });
    socket.once("close", () => {
      this.#ended = new Error("connection closed");
      this.#waiter?.reject(this.#ended);
    });
  }

  async take(length: number): Promise<Buffer> {
    if (this.#available < length) {
      if (this.#ended) throw this.#ended;
      await new Promise<void>((resolve, reject) => (this.#waiter = { need: length, resolve, reject }));
      this.#waiter = undefined;
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const head = this.#chunks[0]!;
      const take = Math.min(head.length, length - filled);
      head.copy(out, filled, 0, take);
      filled += take;
      if (take === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(take);
    }
    this.#available -= length;
    return out;
  }
}
