import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StorageError } from "../errors";
import { RetryingObjectStore } from "../object-store/retrying-store";
import { S3ObjectStore } from "../object-store/s3-store";
import { listVolumeHeaders, writeVolumeHeader } from "../format/volume-header";
import { createKeySlots } from "../keys/key-slots";
import { generateMasterKey } from "../keys/master-key";
import { chunkKey } from "../volume/chunk-layout";
import { startFaultProxy, type FaultProxy } from "./fault-proxy";
import { startS3TestServer, type S3TestServer } from "./s3-test-server";
import { seededBytes } from "./seeded-random";
import { waitFor } from "./wait-for";

/** Answers every request with its method and body length, so framing mistakes show up. */
async function startEchoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((request, response) => {
    let length = 0;
    request.on("data", (data: Buffer) => (length += data.length));
    request.on("end", () => {
      const body = JSON.stringify({ method: request.method, length });
      response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      response.end(request.method === "HEAD" ? undefined : body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Answer {
  status: number;
  body: string;
}

function send(
  agent: http.Agent,
  port: number,
  method: string,
  body?: Buffer,
  options: { chunked?: boolean; expect?: boolean; path?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (body !== undefined && !options.chunked) headers["content-length"] = body.length;
    if (options.expect) headers.expect = "100-continue";
    const request = http.request({ host: "127.0.0.1", port, method, path: options.path ?? "/x", agent, headers }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode!, body: text }));
    });
    request.on("error", reject);
    const write = () => {
      if (body === undefined) return request.end();
      if (options.chunked) {
        for (let i = 0; i < body.length; i += 7_000) request.write(body.subarray(i, i + 7_000));
        return request.end();
      }
      request.end(body);
    };
    if (options.expect) request.on("continue", write);
    else write();
  });
}

describe("fault proxy framing (against an echo server)", () => {
  let echo: Awaited<ReturnType<typeof startEchoServer>>;
  let proxy: FaultProxy;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  beforeAll(async () => {
    echo = await startEchoServer();
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echo.port }, seed: 5 });
  });
  afterAll(async () => {
    agent.destroy();
    await proxy.close();
    await echo.close();
  });

  it("passes Content-Length, chunked, Expect: 100-continue and HEAD requests through on one keep-alive connection", async () => {
    const body = seededBytes(100_003, 1);
    expect(await send(agent, proxy.port, "PUT", body)).toEqual({ status: 200, body: '{"method":"PUT","length":100003}' });
    expect(await send(agent, proxy.port, "PUT", body, { chunked: true })).toEqual({ status: 200, body: '{"method":"PUT","length":100003}' });
    expect(await send(agent, proxy.port, "PUT", body, { expect: true })).toEqual({ status: 200, body: '{"method":"PUT","length":100003}' });
    expect((await send(agent, proxy.port, "HEAD")).status).toBe(200);
    expect(await send(agent, proxy.port, "GET")).toEqual({ status: 200, body: '{"method":"GET","length":0}' });
    expect(await send(agent, proxy.port, "POST", Buffer.from("<Delete/>"))).toEqual({ status: 200, body: '{"method":"POST","length":9}' });
    const stats = proxy.stats();
    expect(stats.requests).toMatchObject({ PUT: 3, HEAD: 1, GET: 1, POST: 1 });
    expect(stats.forwardedBodyBytes.PUT).toBeGreaterThanOrEqual(3 * 100_003);
    expect(stats.bytesFromClients).toBeGreaterThan(3 * 100_003);
  });

  it("answers 503 SlowDown with an S3 XML body and keeps the connection usable", async () => {
    proxy.setMode({ outage: true });
    const failed = await send(agent, proxy.port, "PUT", seededBytes(50_000, 2), { chunked: true });
    expect(failed.status).toBe(503);
    expect(failed.body).toMatch(/<Error><Code>SlowDown<\/Code>/);
    expect((await send(agent, proxy.port, "HEAD")).status).toBe(503);
    const held = await send(agent, proxy.port, "PUT", seededBytes(50_000, 3), { expect: true });
    expect(held.status).toBe(503);
    proxy.setMode({ outage: false });
    expect(await send(agent, proxy.port, "GET")).toEqual({ status: 200, body: '{"method":"GET","length":0}' });
  });

  it("fails only the requests whose path names the targeted keys", async () => {
    proxy.setMode({ failPathIncludes: "/vol/a/" });
    expect((await send(agent, proxy.port, "PUT", seededBytes(1000, 4), { path: "/bucket/vol/a/c/1" })).status).toBe(503);
    expect((await send(agent, proxy.port, "PUT", seededBytes(1000, 5), { path: "/bucket/vol/b/c/1" })).status).toBe(200);
    proxy.setMode({ failPathIncludes: undefined });
    expect((await send(agent, proxy.port, "PUT", seededBytes(1000, 6), { path: "/bucket/vol/a/c/1" })).status).toBe(200);
  });

  it("resets connections and stalls requests until released", async () => {
    proxy.setMode({ outage: true, failure: "reset" });
    await expect(send(agent, proxy.port, "GET")).rejects.toMatchObject({ code: "ECONNRESET" });
    proxy.setMode({ outage: false, stall: true });
    const before = proxy.stats().injected.stalled;
    const stalled = send(agent, proxy.port, "PUT", Buffer.from("held"));
    await waitFor(() => proxy.stats().injected.stalled > before, "the stall");
    proxy.setMode({ stall: false });
    expect(await stalled).toEqual({ status: 200, body: '{"method":"PUT","length":4}' });
    proxy.setMode({ failure: "503" });
  });

  it("resets a stalled request after stallTimeoutMs", async () => {
    const impatient = await startFaultProxy({ target: { host: "127.0.0.1", port: echo.port }, stallTimeoutMs: 50, mode: { stall: true } });
    const own = new http.Agent({ keepAlive: true });
    try {
      await expect(send(own, impatient.port, "GET")).rejects.toMatchObject({ code: "ECONNRESET" });
      expect(impatient.stats().injected.stalled).toBe(1);
    } finally {
      own.destroy();
      await impatient.close();
    }
  });

  it("shaped like a WAN: bodies intact both ways, each response late by the latency, the link at its speed", async () => {
    // 4 MiB/s: a 1 MiB body cannot cross in much under a quarter of a second, whatever the machine.
    const wan = await startFaultProxy({ target: { host: "127.0.0.1", port: echo.port }, latencyMs: 40, linkBytesPerSecond: 4 * 2 ** 20 });
    const own = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      let started = performance.now();
      expect(await send(own, wan.port, "GET")).toEqual({ status: 200, body: '{"method":"GET","length":0}' });
      expect(performance.now() - started).toBeGreaterThanOrEqual(39);
      started = performance.now();
      const body = seededBytes(2 ** 20, 9);
      expect(await send(own, wan.port, "PUT", body, { chunked: true })).toEqual({ status: 200, body: '{"method":"PUT","length":1048576}' });
      expect(performance.now() - started).toBeGreaterThanOrEqual(40 + 230);
      expect(wan.stats().forwardedBodyBytes.PUT).toBeGreaterThan(2 ** 20);
    } finally {
      own.destroy();
      await wan.close();
    }
  });
});

describe("fault proxy in front of the S3 test server", () => {
  let s3: S3TestServer;
  let proxy: FaultProxy;
  let store: RetryingObjectStore;

  beforeAll(async () => {
    s3 = await startS3TestServer();
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: Number(new URL(s3.endpoint).port) }, seed: 42 });
    const s3Store = new S3ObjectStore({
      bucket: s3.bucket,
      endpoint: proxy.endpoint,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      requestTimeoutMs: 10_000,
    });
    store = new RetryingObjectStore(s3Store, { attempts: 12, baseDelayMs: 5, maxDelayMs: 100, operationTimeoutMs: 20_000, attemptTimeoutMs: 5_000 });
  });
  afterAll(async () => {
    await store?.close();
    await proxy?.close();
    await s3?.stop();
  });

  it("counts requests by method", async () => {
    proxy.resetStats();
    await store.put("count/a", Buffer.from("a"));
    await store.get("count/a");
    await store.head("count/a");
    await store.list({ prefix: "count/" });
    await store.deleteMany(["count/a"]);
    const { forwarded } = proxy.stats();
    expect(forwarded).toMatchObject({ PUT: 1, GET: 2, HEAD: 1, POST: 1 }); // list is a GET; multi-delete a POST
  });

  it("loses nothing when 20% of requests fail with 503 SlowDown or a reset", async () => {
    proxy.resetStats();
    proxy.setMode({ failRate: 0.2, failure: "mixed" });
    const objects = new Map<string, Buffer>();
    // Sizes include 3 MiB bodies, which the SDK sends with Expect: 100-continue.
    for (let i = 0; i < 40; i++) objects.set(`faults/${String(i).padStart(3, "0")}`, seededBytes(i % 8 === 0 ? 3 * 2 ** 20 : 1_000 + i * 997, i));
    for (let i = 0; i < 40; i += 8) {
      await Promise.all([...objects].slice(i, i + 8).map(([key, body]) => store.put(key, body)));
    }
    for (const [key, body] of objects) expect((await store.get(key))?.equals(body)).toBe(true);
    const listed = await store.list({ prefix: "faults/" });
    expect(listed.objects.map((object) => object.key)).toEqual([...objects.keys()]);
    await store.deleteMany([...objects.keys()].slice(0, 20));
    expect((await store.list({ prefix: "faults/" })).objects).toHaveLength(20);
    proxy.setMode({ failRate: 0 });
    const { injected } = proxy.stats();
    expect(injected.slowDown).toBeGreaterThan(0);
    expect(injected.reset).toBeGreaterThan(0);
  });

  it("fails with EIO within the deadline during an outage, and recovers when it ends", async () => {
    const short = new RetryingObjectStore(
      new S3ObjectStore({
        bucket: s3.bucket,
        endpoint: proxy.endpoint,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      }),
      { baseDelayMs: 10, maxDelayMs: 50, operationTimeoutMs: 1_000, attempts: 1_000 },
    );
    try {
      await short.put("outage/a", Buffer.from("before"));
      for (const failure of ["503", "reset"] as const) {
        proxy.setMode({ outage: true, failure });
        const error = await short.get("outage/a").catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(StorageError);
        expect((error as StorageError).code).toBe("EIO");
        expect((error as StorageError).message).toMatch(/failed after 1000 ms/);
        // Its own key: a PUT the client gave up on may still land at the server later (as on real
        // S3), which is why chunk objects are write-once keys; "after" below must not race it.
        await expect(short.put(`outage/refused-${failure}`, Buffer.from("x"))).rejects.toMatchObject({ code: "EIO" });
      }
      proxy.setMode({ outage: false });
      await short.put("outage/b", Buffer.from("after"));
      expect((await short.get("outage/a"))?.toString()).toBe("before");
      expect((await short.get("outage/b"))?.toString()).toBe("after");
    } finally {
      proxy.setMode({ outage: false, failure: "503" });
      await short.close();
    }
  });

  it("turns a stall into EIO within the deadline; held requests complete once released", async () => {
    const short = new RetryingObjectStore(
      new S3ObjectStore({
        bucket: s3.bucket,
        endpoint: proxy.endpoint,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      }),
      { baseDelayMs: 10, maxDelayMs: 50, operationTimeoutMs: 800, attemptTimeoutMs: 200 },
    );
    try {
      await short.put("stall/a", Buffer.from("v"));
      proxy.setMode({ stall: true });
      await expect(short.get("stall/a")).rejects.toMatchObject({ code: "EIO", message: /no answer within/ });
      proxy.setMode({ stall: false });
      expect((await short.get("stall/a"))?.toString()).toBe("v");
    } finally {
      proxy.setMode({ stall: false });
      await short.close();
    }
  });

  it("lists volume headers through S3 (startAfter skipping works on s3rver)", async () => {
    const { slots } = await createKeySlots({ volumeId: "vol_x", masterKey: generateMasterKey() });
    for (const volumeId of ["vol_x", "vol_x0", "vol_y"]) {
      await store.put(chunkKey(volumeId, 1, 65_536), Buffer.from("c"));
      await writeVolumeHeader(store, {
        format: 1,
        volumeId,
        name: volumeId,
        sizeBytes: 2 ** 30,
        chunkSize: 2 ** 20,
        compression: "zstd",
        durability: "cloud",
        createdAt: new Date(0).toISOString(),
        slots,
      });
      await store.put(`vol/${volumeId}/m/0000000000000001`, Buffer.from("m"));
    }
    proxy.resetStats();
    expect((await listVolumeHeaders(store)).map((header) => header.volumeId)).toEqual(["vol_x", "vol_x0", "vol_y"]);
    expect(proxy.stats().forwarded.GET).toBe(7); // a LIST and a GET per volume, and the LIST that finds no more
  });
});
