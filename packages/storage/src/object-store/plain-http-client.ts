/**
 * HTTP/1.1 GETs and PUTs over plain keep-alive TCP sockets, read straight into the caller's buffer
 * (net's `onread`), so the kernel copies a chunk object's bytes once; node:http would read them
 * into fresh buffers and the caller would copy them again (figures, and the test that guards
 * `onread`: docs/performance.md). Deliberately narrow: one request per socket, GET and PUT, http:
 * only. A GET without Content-Length throws NeedsFallback: the caller asks through node:http.
 */
import net from "node:net";

export interface PlainHttpOptions {
  host: string;
  port: number;
  /** Requests in flight at once; more wait for a socket (default 64). */
  maxSockets?: number;
  /** A request fails when its socket sees no traffic for this long (milliseconds). */
  timeoutMs: number;
  /** Idle sockets are closed after this long, before a server's own keep-alive timeout (default 4 s). */
  idleMs?: number;
}

export interface PlainHttpResponse {
  status: number;
  /** Lower-case names; a repeated header keeps its last value. */
  headers: Map<string, string>;
  /** A GET's 2xx: exactly Content-Length bytes, in memory from `allocate`. Otherwise the first bytes (at most 64 KiB) of the body. */
  body: Buffer;
}

/** A successful response this reader does not handle (no Content-Length): send the request another way. */
export class NeedsFallback extends Error {
  override readonly name = "NeedsFallback";
}

/** A request that failed on the way: `name` is the socket error's code (ECONNRESET, ...) or TimeoutError. */
export class PlainHttpFailure extends Error {
  constructor(
    override readonly name: string,
    message: string,
  ) {
    super(message);
  }
}

/** Room for a response's status line and headers (S3's are well under 2 KiB). */
const HEAD_ROOM = 16 * 1024;
/** Error bodies are small XML documents; beyond this they are not read (the socket is not reused). */
const MAX_ERROR_BODY = 64 * 1024;
const HEAD_END = Buffer.from("\r\n\r\n");

type Allocate = (length: number) => Buffer;

/** One request on one socket: parses the head in the socket's scratch memory, then reads the body in place. */
class Exchange {
  headLength = 0;
  status = 0;
  headers = new Map<string, string>();
  /** Where the body goes; undefined until the head is parsed. */
  body: Buffer | undefined;
  /** Bytes of the body expected (-1: until the connection closes, for an error body without a length). */
  expected = 0;
  received = 0;
  /** The body ends with the connection (no length, not chunked) or is cut at MAX_ERROR_BODY: no reuse. */
  closesConnection = false;
  /** Chunked error body: done at the terminating zero-length chunk. */
  chunked = false;

  constructor(
    /** A 2xx body goes here, and must come with Content-Length (GET); undefined: read like an error body (PUT). */
    readonly allocate: Allocate | undefined,
    readonly resolve: (response: PlainHttpResponse) => void,
    readonly reject: (error: Error) => void,
  ) {}
}

class Connection {
  readonly scratch = Buffer.allocUnsafe(HEAD_ROOM);
  readonly socket: net.Socket;
  exchange: Exchange | undefined;
  /** Has answered a request before: a failure before any byte of the next answer may just be a stale socket. */
  reused = false;
  sawBytes = false;
  closed = false;

  constructor(
    options: { host: string; port: number },
    private readonly pool: { reusable(connection: Connection): void; closed(connection: Connection): void },
  ) {
    this.socket = net.connect({
      host: options.host,
      port: options.port,
      noDelay: true,
      onread: { buffer: () => this.nextBuffer(), callback: (bytes: number) => this.onBytes(bytes) },
    });
    this.socket.on("error", (error: NodeJS.ErrnoException) => this.fail(new PlainHttpFailure(error.code ?? error.name, error.message)));
    this.socket.on("end", () => this.fail(new PlainHttpFailure("ECONNRESET", "the server closed the connection")));
    this.socket.on("close", () => {
      this.closed = true;
      this.fail(new PlainHttpFailure("ECONNRESET", "the connection closed"));
      this.pool.closed(this);
    });
    this.socket.on("timeout", () => {
      if (this.exchange === undefined) this.destroy();
      else this.fail(new PlainHttpFailure("TimeoutError", "no answer from the server in time"));
    });
  }

  send(head: string, body: Uint8Array | undefined, exchange: Exchange, timeoutMs: number): void {
    this.exchange = exchange;
    this.sawBytes = false;
    this.socket.setTimeout(timeoutMs);
    this.socket.cork();
    this.socket.write(head);
    if (body !== undefined && body.length > 0) this.socket.write(body);
    this.socket.uncork();
  }

  idle(idleMs: number): void {
    this.reused = true;
    this.socket.setTimeout(idleMs);
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  /** The memory the next socket read goes into: never empty (a zero-length read buffer is an error). */
  private nextBuffer(): Uint8Array {
    const exchange = this.exchange;
    if (exchange === undefined) return this.scratch;
    if (exchange.body === undefined) return exchange.headLength < HEAD_ROOM ? this.scratch.subarray(exchange.headLength) : this.scratch;
    if (exchange.expected >= 0 && exchange.received < exchange.expected) return exchange.body.subarray(exchange.received, exchange.expected);
    if (exchange.expected < 0 && exchange.received < exchange.body.length) return exchange.body.subarray(exchange.received);
    return this.scratch;
  }

  private onBytes(bytes: number): boolean {
    const exchange = this.exchange;
    if (exchange === undefined) {
      // Bytes nobody asked for (a server talking out of turn): this socket cannot be trusted any more.
      this.destroy();
      return false;
    }
    this.sawBytes = true;
    try {
      if (exchange.body === undefined) {
        exchange.headLength += bytes;
        this.parseHead(exchange);
      } else {
        exchange.received += bytes;
      }
      if (exchange.body !== undefined) this.finishIfComplete(exchange);
    } catch (error) {
      this.fail(error as Error);
      return false;
    }
    return true;
  }

  private parseHead(exchange: Exchange): void {
    const end = this.scratch.subarray(0, exchange.headLength).indexOf(HEAD_END);
    if (end < 0) {
      if (exchange.headLength >= HEAD_ROOM) throw new PlainHttpFailure("EPROTO", `response head longer than ${HEAD_ROOM} bytes`);
      return;
    }
    const lines = this.scratch.toString("latin1", 0, end).split("\r\n");
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
    if (!status) throw new PlainHttpFailure("EPROTO", "not an HTTP/1.1 response");
    const extraStart = end + HEAD_END.length;
    const extra = exchange.headLength - extraStart;
    exchange.status = Number(status[1]);
    if (exchange.status >= 100 && exchange.status < 200) {
      // An interim answer (100 Continue): the real head follows.
      this.scratch.copy(this.scratch, 0, extraStart, exchange.headLength);
      exchange.headLength = extra;
      this.parseHead(exchange);
      return;
    }
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i]!.indexOf(":");
      if (colon > 0) exchange.headers.set(lines[i]!.slice(0, colon).trim().toLowerCase(), lines[i]!.slice(colon + 1).trim());
    }
    const lengthHeader = exchange.headers.get("content-length");
    const chunked = /chunked/i.test(exchange.headers.get("transfer-encoding") ?? "");
    const length = lengthHeader !== undefined && !chunked && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
    if (exchange.status >= 200 && exchange.status < 300 && exchange.allocate !== undefined) {
      if (length === undefined) throw new NeedsFallback(`HTTP ${exchange.status} without Content-Length`);
      exchange.expected = length;
      exchange.body = exchange.allocate(length);
      if (exchange.body.length !== length) throw new Error(`allocate(${length}) gave ${exchange.body.length} bytes`);
    } else if (length !== undefined) {
      exchange.expected = Math.min(length, MAX_ERROR_BODY);
      exchange.closesConnection = length > MAX_ERROR_BODY;
      exchange.body = Buffer.allocUnsafe(exchange.expected);
    } else {
      // Read what comes, up to the limit: the end is the zero-length chunk, or the connection's end.
      exchange.expected = -1;
      exchange.chunked = chunked;
      exchange.closesConnection = !chunked;
      exchange.body = Buffer.allocUnsafe(MAX_ERROR_BODY);
    }
    const taken = Math.min(extra, exchange.expected >= 0 ? exchange.expected : exchange.body.length);
    this.scratch.copy(exchange.body, 0, extraStart, extraStart + taken);
    exchange.received = taken;
    // More bytes than the body: the server answered something we did not ask for.
    if (extra > taken && exchange.expected >= 0) throw new PlainHttpFailure("EPROTO", "the server sent more than the response's length");
  }

  private finishIfComplete(exchange: Exchange): void {
    const body = exchange.body!;
    if (exchange.expected >= 0) {
      if (exchange.received < exchange.expected) return;
    } else if (exchange.chunked) {
      const seen = body.subarray(0, exchange.received);
      const done = seen.length >= 5 && seen.subarray(seen.length - 5).toString("latin1") === "0\r\n\r\n";
      if (!done && exchange.received < body.length) return;
      if (!done) exchange.closesConnection = true;
    } else if (exchange.received < body.length) {
      return; // until the connection ends (see fail) or the limit
    }
    this.complete(exchange, exchange.expected >= 0 ? body : body.subarray(0, exchange.received));
  }

  private complete(exchange: Exchange, body: Buffer): void {
    this.exchange = undefined;
    const reusable = !exchange.closesConnection && !/close/i.test(exchange.headers.get("connection") ?? "");
    if (!reusable) this.destroy();
    exchange.resolve({ status: exchange.status, headers: exchange.headers, body });
    if (reusable) this.pool.reusable(this);
  }

  /** The exchange in flight (if any) fails; the socket is not used again. */
  fail(error: Error): void {
    const exchange = this.exchange;
    if (
      exchange !== undefined &&
      exchange.body !== undefined &&
      exchange.expected < 0 &&
      !exchange.chunked &&
      error instanceof PlainHttpFailure &&
      error.name === "ECONNRESET"
    ) {
      // An error body that ends with the connection: it is complete now.
      this.closed = true;
      this.complete(exchange, exchange.body.subarray(0, exchange.received));
      return;
    }
    this.exchange = undefined;
    if (!this.closed) this.destroy();
    exchange?.reject(error);
  }
}

export class PlainHttpClient {
  readonly #options: Required<PlainHttpOptions>;
  readonly #idle: Connection[] = [];
  #active = 0;
  readonly #waiting: Array<() => void> = [];
  #closed = false;

  constructor(options: PlainHttpOptions) {
    this.#options = { ...options, maxSockets: options.maxSockets ?? 64, idleMs: options.idleMs ?? 4000 };
  }

  /**
   * Sends `GET path` with `headers` (the Host header included by the caller: it is signed) and
   * answers once the whole response is in, a 2xx body in `allocate(Content-Length)`.
   */
  get(path: string, headers: Record<string, string>, allocate: Allocate): Promise<PlainHttpResponse> {
    return this.#request("GET", path, headers, undefined, allocate);
  }

  /**
   * Sends `PUT path` with `headers` (Content-Length included by the caller: it is signed) and
   * `body`, written from the caller's memory; the caller keeps it unchanged until this settles.
   */
  put(path: string, headers: Record<string, string>, body: Uint8Array): Promise<PlainHttpResponse> {
    return this.#request("PUT", path, headers, body, undefined);
  }

  /**
   * One request and its whole response. A socket that had answered before and fails before any byte
   * of this answer (the server closed it while idle) is replaced once, transparently: both methods
   * are safe to repeat (a PUT stores the same bytes under the same key).
   */
  async #request(
    method: "GET" | "PUT",
    path: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
    allocate: Allocate | undefined,
  ): Promise<PlainHttpResponse> {
    if (this.#closed) throw new PlainHttpFailure("ECONNABORTED", "the client is closed");
    let head = `${method} ${path} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    head += "\r\n";
    await this.#slot();
    try {
      for (let attempt = 0; ; attempt++) {
        const connection = this.#idle.pop() ?? new Connection(this.#options, this.#pool);
        try {
          return await new Promise<PlainHttpResponse>((resolve, reject) =>
            connection.send(head, body, new Exchange(allocate, resolve, reject), this.#options.timeoutMs),
          );
        } catch (error) {
          const stale = connection.reused && !connection.sawBytes && error instanceof PlainHttpFailure && error.name !== "TimeoutError";
          if (!stale || attempt > 0) throw error;
        }
      }
    } finally {
      this.#active--;
      this.#waiting.shift()?.();
    }
  }

  /** Closes every idle socket; requests in flight finish on theirs, which then close. */
  close(): void {
    this.#closed = true;
    for (const connection of this.#idle.splice(0)) connection.destroy();
  }

  async #slot(): Promise<void> {
    while (this.#active >= this.#options.maxSockets) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#active++;
  }

  readonly #pool = {
    reusable: (connection: Connection): void => {
      if (this.#closed || connection.closed) {
        connection.destroy();
        return;
      }
      connection.idle(this.#options.idleMs);
      this.#idle.push(connection);
    },
    // A socket closed while idle (by the server, or its idle timeout) leaves the list.
    closed: (connection: Connection): void => {
      const at = this.#idle.indexOf(connection);
      if (at >= 0) this.#idle.splice(at, 1);
    },
  };
}
