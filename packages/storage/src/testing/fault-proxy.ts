/**
 * A small HTTP-aware TCP proxy for fault tests, between an S3 client and the S3 test server on
 * 127.0.0.1: per request it passes through, answers `503 SlowDown`, resets, or stalls, as set at run
 * time by `setMode` (seeded, so a run repeats), and counts requests by method and bytes. It parses
 * request heads and bodies only (Content-Length or chunked, keep-alive, no pipelining); responses
 * are copied back as they come. It can also shape the link like a WAN (`latencyMs`,
 * `linkBytesPerSecond`: see link-shaper.ts) for benches.
 */
import net from "node:net";
import { DelayLine, LinkShaper } from "./link-shaper";
import { seededRandom } from "./seeded-random";

export type FaultKind = "503" | "reset";

export interface FaultMode {
  /** Share of requests (0..1) that fail with `failure` (default 0). */
  failRate: number;
  /** How a failing request fails: "503" SlowDown, "reset" the connection, or "mixed" (either, seeded). */
  failure: FaultKind | "mixed";
  /** Hold every new request unanswered (default false). Turning it off forwards the held ones. */
  stall: boolean;
  /** Fail every request (default false), the way `failure` says. */
  outage: boolean;
  /** Fail every request whose path contains this text (e.g. one volume's key prefix), the way `failure` says. */
  failPathIncludes?: string;
}

export type HttpMethod = "PUT" | "GET" | "DELETE" | "POST" | "HEAD" | "OTHER";

export interface FaultProxyStats {
  /** Requests seen, by method (whatever happened to them). */
  requests: Record<HttpMethod, number>;
  /** Requests passed through to the target, by method. */
  forwarded: Record<HttpMethod, number>;
  /** Request body bytes passed through, by method. */
  forwardedBodyBytes: Record<HttpMethod, number>;
  injected: { slowDown: number; reset: number; stalled: number };
  /** All bytes received from clients / sent to clients. */
  bytesFromClients: number;
  bytesToClients: number;
}

export interface FaultProxy {
  /** e.g. http://127.0.0.1:40123 — use as the S3 endpoint. */
  endpoint: string;
  port: number;
  setMode(mode: Partial<FaultMode>): void;
  /** Forwards every request held by a stall (the stall itself stays on for new requests). */
  releaseStalled(): void;
  stats(): FaultProxyStats;
  resetStats(): void;
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  target: { host: string; port: number };
  /** Seed for failRate decisions (default 1). */
  seed?: number;
  /** A stalled request's connection is reset after this long (default: held until released). */
  stallTimeoutMs?: number;
  /** Initial mode (default: pass everything through). */
  mode?: Partial<FaultMode>;
  /** Milliseconds added before each response reaches the client, as a distant server's round trip (default 0). */
  latencyMs?: number;
  /** Speed of the link in each direction, shared by all connections (default: unshaped). */
  linkBytesPerSecond?: number;
  /** Told of each request as its head arrives (a bench tracing the requests of one commit). */
  onRequest?: (method: HttpMethod, path: string) => void;
}

const MAX_HEAD_BYTES = 64 * 1024;
const METHODS: HttpMethod[] = ["PUT", "GET", "DELETE", "POST", "HEAD", "OTHER"];

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const random = seededRandom(options.seed ?? 1);
  let mode: FaultMode = { failRate: 0, failure: "503", stall: false, outage: false, ...options.mode };
  let stats = emptyStats();
  let requestCounter = 0;
  const connections = new Set<ProxyConnection>();

  const context: ProxyContext = {
    target: options.target,
    stallTimeoutMs: options.stallTimeoutMs,
    latencyMs: options.latencyMs ?? 0,
    linkUp: options.linkBytesPerSecond === undefined ? undefined : new LinkShaper(options.linkBytesPerSecond),
    linkDown: options.linkBytesPerSecond === undefined ? undefined : new LinkShaper(options.linkBytesPerSecond),
    stats: () => stats,
    decide(method: HttpMethod, path: string): Decision {
      options.onRequest?.(method, path);
      if (mode.stall) return "stall";
      const targeted = mode.failPathIncludes !== undefined && path.includes(mode.failPathIncludes);
      const fails = mode.outage || targeted || (mode.failRate > 0 && random() < mode.failRate);
      if (!fails) return "forward";
      if (mode.failure === "mixed") return random() < 0.5 ? "503" : "reset";
      return mode.failure;
    },
    nextRequestId: () => `fault-proxy-${++requestCounter}`,
  };

  const server = net.createServer((socket) => {
    const connection = new ProxyConnection(socket, context);
    connections.add(connection);
    socket.once("close", () => connections.delete(connection));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    setMode(change) {
      mode = { ...mode, ...change };
      if (!mode.stall) for (const connection of connections) connection.release();
    },
    releaseStalled() {
      for (const connection of connections) connection.release();
    },
    stats: () => structuredClone(stats),
    resetStats() {
      stats = emptyStats();
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of connections) connection.destroy();
      await closed;
    },
  };
}

type Decision = "forward" | "stall" | FaultKind;

interface ProxyContext {
  target: { host: string; port: number };
  stallTimeoutMs: number | undefined;
  latencyMs: number;
  /** Client to server, and back: one shared link each way. */
  linkUp: LinkShaper | undefined;
  linkDown: LinkShaper | undefined;
  stats(): FaultProxyStats;
  decide(method: HttpMethod, path: string): Decision;
  nextRequestId(): string;
}

interface Request {
  method: HttpMethod;
  /** The request line's target (path and query). */
  path: string;
  head: Buffer;
  expectContinue: boolean;
  body: BodyFraming;
}

/** One client connection, its upstream connection (opened on first forward) and its parse state. */
class ProxyConnection {
  private buffer: Buffer = Buffer.alloc(0);
  private request: Request | undefined;
  /** What the current request's body bytes do: go upstream, or nowhere (the request is being failed). */
  private action: "forward" | "discard" | "held" = "forward";
  private upstream: net.Socket | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly fromClient: DelayLine;
  private readonly toClient: DelayLine;

  constructor(
    private readonly client: net.Socket,
    private readonly context: ProxyContext,
  ) {
    this.fromClient = new DelayLine({
      latencyMs: 0,
      link: context.linkUp,
      source: () => this.client,
      deliver: (data) => {
        this.buffer = this.buffer.length === 0 ? data : Buffer.concat([this.buffer, data]);
        this.process();
      },
      end: () => {},
    });
    this.toClient = new DelayLine({
      latencyMs: context.latencyMs,
      link: context.linkDown,
      source: () => this.upstream,
      deliver: (data) => this.client.write(data),
      // The server closing its side ends the client's connection too (after what it already sent).
      end: () => this.client.end(),
    });
    client.on("data", (data: Buffer) => {
      this.context.stats().bytesFromClients += data.length;
      this.fromClient.push(data);
    });
    client.on("error", () => this.destroy());
    client.on("close", () => this.destroy());
  }

  /** Lets a stalled request through. */
  release(): void {
    if (this.closed || this.action !== "held" || this.request === undefined) return;
    clearTimeout(this.stallTimer);
    this.forward(this.request);
    this.process();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.stallTimer);
    this.fromClient.close();
    this.toClient.close();
    this.client.destroy();
    this.upstream?.destroy();
  }

  private process(): void {
    while (!this.closed) {
      if (this.request === undefined) {
        const request = this.parseHead();
        if (request === undefined) return;
        this.request = request;
        this.begin(request);
        continue;
      }
      if (this.action === "held") return;
      const { used, done } = this.request.body.consume(this.buffer);
      if (used > 0) {
        const part = this.buffer.subarray(0, used);
        this.buffer = this.buffer.subarray(used);
        if (this.action === "forward") {
          this.context.stats().forwardedBodyBytes[this.request.method] += part.length;
          this.upstream!.write(part);
        }
      }
      if (!done) return;
      const finished = this.request;
      this.request = undefined;
      if (this.action === "discard") this.answerSlowDown(finished, false);
      this.action = "forward";
    }
  }

  private parseHead(): Request | undefined {
    const end = this.buffer.indexOf("\r\n\r\n");
    if (end < 0) {
      if (this.buffer.length > MAX_HEAD_BYTES) this.destroy();
      return undefined;
    }
    const head = this.buffer.subarray(0, end + 4);
    this.buffer = this.buffer.subarray(end + 4);
    const lines = head.toString("latin1").split("\r\n");
    const verb = lines[0]!.split(" ")[0]!.toUpperCase();
    const method = (METHODS as string[]).includes(verb) ? (verb as HttpMethod) : "OTHER";
    const path = lines[0]!.split(" ")[1] ?? "";
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const chunked = /\bchunked\b/i.test(headers.get("transfer-encoding") ?? "");
    const body = chunked ? new ChunkedBody() : new LengthBody(Number(headers.get("content-length") ?? 0) || 0);
    // `Expect: 100-continue` (the AWS SDK sends it for large bodies): streamed, so the server's 100 reaches the client.
    return { method, path, head, expectContinue: /100-continue/i.test(headers.get("expect") ?? ""), body };
  }

  private begin(request: Request): void {
    const stats = this.context.stats();
    stats.requests[request.method] += 1;
    const decision = this.context.decide(request.method, request.path);
    if (decision === "forward") return this.forward(request);
    if (decision === "reset") {
      stats.injected.reset += 1;
      this.closed = true;
      this.upstream?.destroy();
      this.client.resetAndDestroy();
      return;
    }
    if (decision === "503") {
      stats.injected.slowDown += 1;
      // The client may be holding its body back for a 100 Continue that will not come: answer now and close.
      if (request.expectContinue && !request.body.started) return this.answerSlowDown(request, true);
      this.action = "discard";
      return;
    }
    stats.injected.stalled += 1;
    this.action = "held";
    if (this.context.stallTimeoutMs !== undefined) {
      this.stallTimer = setTimeout(() => {
        this.closed = true;
        this.upstream?.destroy();
        this.client.resetAndDestroy();
      }, this.context.stallTimeoutMs);
    }
  }

  private forward(request: Request): void {
    const stats = this.context.stats();
    stats.forwarded[request.method] += 1;
    this.action = "forward";
    // The head and what follows of the body in this turn leave as one write: sent apart, a small body
    // waited for the head's ACK under Nagle's algorithm, which the server delays (~40 ms).
    const upstream = this.connectUpstream();
    upstream.cork();
    upstream.write(request.head);
    process.nextTick(() => upstream.uncork());
  }

  private connectUpstream(): net.Socket {
    if (this.upstream !== undefined && !this.upstream.destroyed) return this.upstream;
    const upstream = net.connect(this.context.target.port, this.context.target.host);
    upstream.on("data", (data: Buffer) => {
      this.context.stats().bytesToClients += data.length;
      this.toClient.push(data);
    });
    upstream.on("end", () => this.toClient.end());
    upstream.on("error", () => this.destroy());
    upstream.on("close", () => {
      if (this.upstream === upstream) this.upstream = undefined;
    });
    this.upstream = upstream;
    return upstream;
  }

  private answerSlowDown(request: Request, close: boolean): void {
    const requestId = this.context.nextRequestId();
    const body =
      request.method === "HEAD"
        ? ""
        : '<?xml version="1.0" encoding="UTF-8"?>\n' +
          `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>${requestId}</RequestId><HostId>fault-proxy</HostId></Error>`;
    const head = [
      "HTTP/1.1 503 Slow Down",
      "Content-Type: application/xml",
      `Content-Length: ${Buffer.byteLength(body)}`,
      `x-amz-request-id: ${requestId}`,
      `Connection: ${close ? "close" : "keep-alive"}`,
      "",
      "",
    ].join("\r\n");
    const response = Buffer.from(head + body);
    this.context.stats().bytesToClients += response.length;
    if (close) {
      this.closed = true;
      this.upstream?.destroy();
      this.client.end(response);
    } else {
      this.client.write(response);
    }
  }
}

interface BodyFraming {
  /** Whether any body byte has been seen. */
  readonly started: boolean;
  /** How many bytes at the start of `data` belong to this body, and whether the body ends there. */
  consume(data: Buffer): { used: number; done: boolean };
}

class LengthBody implements BodyFraming {
  started = false;
  constructor(private remaining: number) {}

  consume(data: Buffer): { used: number; done: boolean } {
    const used = Math.min(this.remaining, data.length);
    if (used > 0) this.started = true;
    this.remaining -= used;
    return { used, done: this.remaining === 0 };
  }
}

/** RFC 9112 7.1: hex size line (extensions ignored), data, CRLF; a zero size, trailers, CRLF. */
class ChunkedBody implements BodyFraming {
  started = false;
  private state: "size" | "data" | "data-crlf" | "trailer" = "size";
  private line = "";
  private remaining = 0;

  consume(data: Buffer): { used: number; done: boolean } {
    let i = 0;
    if (data.length > 0) this.started = true;
    while (i < data.length) {
      if (this.state === "data") {
        const take = Math.min(this.remaining, data.length - i);
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = "data-crlf";
        continue;
      }
      const byte = data[i++]!;
      if (byte !== 0x0a) {
        if (byte !== 0x0d) this.line += String.fromCharCode(byte);
        continue;
      }
      const line = this.line;
      this.line = "";
      if (this.state === "data-crlf") {
        this.state = "size";
      } else if (this.state === "size") {
        this.remaining = Number.parseInt(line.split(";")[0]!.trim(), 16) || 0;
        this.state = this.remaining === 0 ? "trailer" : "data";
      } else if (line === "") {
        return { used: i, done: true }; // the empty line after the trailers
      }
    }
    return { used: i, done: false };
  }
}

function emptyStats(): FaultProxyStats {
  const byMethod = () => Object.fromEntries(METHODS.map((method) => [method, 0])) as Record<HttpMethod, number>;
  return {
    requests: byMethod(),
    forwarded: byMethod(),
    forwardedBodyBytes: byMethod(),
    injected: { slowDown: 0, reset: 0, stalled: 0 },
    bytesFromClients: 0,
    bytesToClients: 0,
  };
}
