import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { S3ObjectStore } from "./s3-store";
import { PlainHttpFailure, PlainHttpClient, NeedsFallback } from "./plain-http-client";

/** A scripted HTTP server on 127.0.0.1: `answer` gets each request's head and the socket to reply on. */
async function scriptedServer(
  answer: (request: string, socket: net.Socket, serial: number, body: Buffer) => unknown,
): Promise<{ port: number; connections: () => number; maxOpen: () => number; close(): Promise<void> }> {
  let connections = 0;
  let open = 0;
  let maxOpen = 0;
  let serial = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    maxOpen = Math.max(maxOpen, ++open);
    sockets.add(socket);
    socket.on("close", () => {
      open--;
      sockets.delete(socket);
    });
    socket.on("error", () => {});
    let pending = Buffer.alloc(0);
    socket.on("data", (data) => {
      pending = Buffer.concat([pending, data]);
      for (let end = pending.indexOf("\r\n\r\n"); end >= 0; end = pending.indexOf("\r\n\r\n")) {
        const request = pending.toString("latin1", 0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(request)?.[1] ?? 0);
        if (pending.length < end + 4 + length) return; // the body is still on its way
        const body = pending.subarray(end + 4, end + 4 + length);
        pending = pending.subarray(end + 4 + length);
        // A failed expect in an async answer rejects unhandled, and vitest fails the run with it.
        void answer(request, socket, ++serial, body);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    maxOpen: () => maxOpen,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const bytes = (length: number, seed: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff));
const okHead = (length: number, extra = "") => `HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\n${extra}\r\n`;

describe("PlainHttpClient", () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  async function setup(answer: Parameters<typeof scriptedServer>[0], options: { maxSockets?: number; timeoutMs?: number; idleMs?: number } = {}) {
    const server = await scriptedServer(answer);
    const client = new PlainHttpClient({
      host: "127.0.0.1",
      port: server.port,
      timeoutMs: options.timeoutMs ?? 5000,
      maxSockets: options.maxSockets,
      idleMs: options.idleMs,
    });
    cleanups.push(
      () => server.close(),
      () => client.close(),
    );
    return { server, client };
  }

  it("reads a body that arrives in pieces, head split too, into the buffer allocate gave, and reuses the socket", async () => {
    const body = bytes(300_000, 1);
    const { server, client } = await setup(async (request, socket) => {
      expect(request).toBe("GET /b/k HTTP/1.1\r\nhost: h");
      const head = okHead(body.length, "X-Note: a: b\r\n");
      socket.write(head.slice(0, 10));
      await sleep(5);
      socket.write(head.slice(10) + body.subarray(0, 100).toString("latin1"), "latin1");
      for (let at = 100; at < body.length; at += 70_000) {
        await sleep(2);
        socket.write(body.subarray(at, at + 70_000));
      }
    });
    const allocated: number[] = [];
    const target = Buffer.alloc(body.length + 10, 0xee);
    const first = await client.get("/b/k", { host: "h" }, (length) => {
      allocated.push(length);
      return target.subarray(5, 5 + length);
    });
    expect(first.status).toBe(200);
    expect(first.headers.get("x-note")).toBe("a: b");
    expect(allocated).toEqual([body.length]);
    expect(first.body.equals(body)).toBe(true);
    expect(target[4]).toBe(0xee); // nothing written outside what allocate gave
    expect(target[5 + body.length]).toBe(0xee);
    const second = await client.get("/b/k", { host: "h" }, (length) => Buffer.alloc(length));
    expect(second.body.equals(body)).toBe(true);
    expect(server.connections()).toBe(1);
  });

  it("answers an error status with its body, and keeps the socket for a chunked error body that ended", async () => {
    const xml = "<Error><Code>SlowDown</Code></Error>";
    const { server, client } = await setup((_request, socket, serial) => {
      if (serial === 1)
        socket.write(
          `HTTP/1.1 404 Not Found\r\nContent-Length: ${"<Error><Code>NoSuchKey</Code></Error>".length}\r\n\r\n<Error><Code>NoSuchKey</Code></Error>`,
        );
      else if (serial === 2) socket.write(`HTTP/1.1 503 Slow Down\r\nTransfer-Encoding: chunked\r\n\r\n${xml.length.toString(16)}\r\n${xml}\r\n0\r\n\r\n`);
      else socket.write(okHead(3) + "abc");
    });
    const missing = await client.get("/k", {}, () => Buffer.alloc(0));
    expect(missing.status).toBe(404);
    expect(missing.body.toString()).toContain("NoSuchKey");
    const slow = await client.get("/k", {}, () => Buffer.alloc(0));
    expect(slow.status).toBe(503);
    expect(slow.body.toString()).toContain("<Code>SlowDown</Code>");
    expect((await client.get("/k", {}, (n) => Buffer.alloc(n))).body.toString()).toBe("abc");
    expect(server.connections()).toBe(1);
  });

  it("reads an error body without a length until the server closes, then opens a new socket", async () => {
    const { server, client } = await setup((_request, socket, serial) => {
      if (serial === 1) socket.end("HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\n<Error><Code>InternalError</Code></Error>");
      else socket.write(okHead(2) + "ok");
    });
    const failed = await client.get("/k", {}, () => Buffer.alloc(0));
    expect(failed.status).toBe(500);
    expect(failed.body.toString()).toContain("InternalError");
    expect((await client.get("/k", {}, (n) => Buffer.alloc(n))).body.toString()).toBe("ok");
    expect(server.connections()).toBe(2);
  });

  it("throws NeedsFallback for a successful answer without Content-Length", async () => {
    const { client } = await setup((_request, socket) => socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
    await expect(client.get("/k", {}, (n) => Buffer.alloc(n))).rejects.toBeInstanceOf(NeedsFallback);
  });

  it("replaces a kept socket the server closed while it was idle, without an error", async () => {
    const { server, client } = await setup((_request, socket, serial) => {
      socket.write(okHead(1) + String(serial));
      // The server drops the connection right after answering, as a keep-alive timeout would.
      if (serial === 1) setTimeout(() => socket.destroy(), 5);
    });
    expect((await client.get("/k", {}, (n) => Buffer.alloc(n))).body.toString()).toBe("1");
    await sleep(50);
    expect((await client.get("/k", {}, (n) => Buffer.alloc(n))).body.toString()).toBe("2");
    expect(server.connections()).toBe(2);
  });

  it("fails with ECONNRESET when the server closes in the middle of a body, and with EPROTO when it sends more than the length", async () => {
    const { client } = await setup((_request, socket, serial) => {
      if (serial === 1) socket.end(okHead(100) + "only part");
      else socket.write(okHead(2) + "abcdef");
    });
    const cut = await client.get("/k", {}, (n) => Buffer.alloc(n)).catch((error: unknown) => error);
    expect(cut).toBeInstanceOf(PlainHttpFailure);
    expect((cut as PlainHttpFailure).name).toBe("ECONNRESET");
    const extra = await client.get("/k", {}, (n) => Buffer.alloc(n)).catch((error: unknown) => error);
    expect((extra as PlainHttpFailure).name).toBe("EPROTO");
  });

  it("fails with TimeoutError when the server stalls", async () => {
    const { client } = await setup((_request, socket) => socket.write(okHead(10) + "abc"), { timeoutMs: 200 });
    const started = Date.now();
    const stalled = await client.get("/k", {}, (n) => Buffer.alloc(n)).catch((error: unknown) => error);
    expect((stalled as PlainHttpFailure).name).toBe("TimeoutError");
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("sends a PUT's body from the caller's memory and reads its answer; a kept socket the server dropped is replaced", async () => {
    const received: Buffer[] = [];
    const { server, client } = await setup((request, socket, serial, body) => {
      expect(request).toMatch(/^PUT \/b\/k HTTP\/1\.1\r\ncontent-length: 200000$/);
      received.push(Buffer.from(body));
      socket.write(
        serial === 2
          ? "HTTP/1.1 403 Forbidden\r\nContent-Length: 35\r\n\r\n<Error><Code>Denied</Code></Error>."
          : 'HTTP/1.1 200 OK\r\nETag: "x"\r\nContent-Length: 0\r\n\r\n',
      );
      if (serial === 2) setTimeout(() => socket.destroy(), 5);
    });
    const body = bytes(200_000, 9);
    const stored = await client.put("/b/k", { "content-length": String(body.length) }, body);
    expect(stored.status).toBe(200);
    expect(stored.headers.get("etag")).toBe('"x"');
    const refused = await client.put("/b/k", { "content-length": String(body.length) }, body);
    expect(refused.status).toBe(403);
    expect(refused.body.toString()).toContain("<Code>Denied</Code>");
    await sleep(50);
    expect((await client.put("/b/k", { "content-length": String(body.length) }, body)).status).toBe(200);
    expect(received).toHaveLength(3);
    for (const copy of received) expect(copy.equals(body)).toBe(true);
    expect(server.connections()).toBe(2);
  });

  it("keeps at most maxSockets requests in flight", async () => {
    const { server, client } = await setup((_request, socket) => setTimeout(() => socket.write(okHead(1) + "x"), 20), { maxSockets: 2 });
    const answers = await Promise.all(Array.from({ length: 6 }, () => client.get("/k", {}, (n) => Buffer.alloc(n))));
    expect(answers.map((a) => a.body.toString())).toEqual(["x", "x", "x", "x", "x", "x"]);
    expect(server.maxOpen()).toBe(2);
  });
});

describe("S3ObjectStore GETs through PlainHttpClient", () => {
  it("falls back to node:http when the server streams a body without a length, and keeps the answer right", async () => {
    const server = await scriptedServer((request, socket) => {
      const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
      socket.write(request.startsWith("GET") ? chunked : "HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n");
    });
    const store = new S3ObjectStore({ bucket: "bkt", endpoint: `http://127.0.0.1:${server.port}`, credentials: { accessKeyId: "a", secretAccessKey: "b" } });
    try {
      expect((await store.get("k"))?.toString()).toBe("hello");
      expect((await store.get("k"))?.toString()).toBe("hello");
    } finally {
      await store.close();
      await server.close();
    }
  });
});
