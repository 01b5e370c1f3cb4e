/**
 * What the NBD port withstands: a client that sends options and never reads the replies, connection
 * floods past the caps, and the handshake and idle timeouts (on a clock the test drives).
 */
import net from "node:net";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { NBD_OPT_LIST, NBD_REP_ACK } from "../protocol/constants";
import { encodeOption } from "../protocol/handshake-frames";
import { NBD_CMD_READ, NBD_CMD_WRITE } from "../protocol/constants";
import type { BlockDevice } from "@stratus/storage";
import { MemoryDevice } from "../testing/memory-device";
import { MemoryExportRegistry } from "../testing/memory-export-registry";
import { runOk, waitFor } from "../testing/nbd-tools";
import { RawNbdClient } from "../testing/raw-nbd-client";
import { createNbdServer, type NbdServer, type NbdServerOptions, type ServerClock } from "./nbd-server";

const MiB = 1024 * 1024;
const logger = pino({ level: process.env.STRATUS_TEST_LOG_LEVEL ?? "silent" });

/** Timers that fire only when the test moves time on. */
class ManualClock implements ServerClock {
  private time = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  advance(ms: number): void {
    this.time += ms;
    for (;;) {
      const due = [...this.timers].filter(([, timer]) => timer.at <= this.time).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) return;
      this.timers.delete(due[0]);
      due[1].fn();
    }
  }
}

let server: NbdServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(registry: MemoryExportRegistry, options: Partial<NbdServerOptions> = {}): Promise<number> {
  server = createNbdServer({ registry, logger, ...options });
  return (await server.listen(0, "127.0.0.1")).port;
}

async function greetedWithin(port: number, timeoutMs: number): Promise<RawNbdClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = await RawNbdClient.connect(port);
    try {
      await client.greet();
      return client;
    } catch (error) {
      client.close();
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

const bufferMemory = () => {
  const usage = process.memoryUsage();
  return usage.arrayBuffers + usage.external;
};

describe("NBD port limits", () => {
  it("stops reading a client that never reads its option replies; memory stays bounded and others are served", async () => {
    // Each LIST answer is ~66 KiB: a client asking thousands of times without reading would otherwise
    // pile gigabytes of replies into the server's socket buffers.
    const registry = new MemoryExportRegistry();
    for (let i = 0; i < 16; i++) registry.add(`disk${i}`, new MemoryDevice({ size: MiB }), "d".repeat(4096));
    const port = await serve(registry);
    const flooder = await RawNbdClient.connect(port);
    await flooder.greet();
    flooder.socket.pause(); // never reads another byte
    const before = bufferMemory();
    const batch = Buffer.concat(Array.from({ length: 4096 }, () => encodeOption(NBD_OPT_LIST)));
    const limit = 2_000_000; // options: ~130 GB of answers if all were taken in
    let sent = 0;
    // Send while the connection takes them, until the kernel's buffers are full and stay full: the
    // server has stopped reading.
    let stalled = false;
    while (sent < limit && !stalled) {
      sent += 4096;
      if (!flooder.socket.write(batch)) {
        stalled = !(await Promise.race([
          new Promise<boolean>((resolve) => flooder.socket.once("drain", () => resolve(true))),
          new Promise<boolean>((resolve) => setTimeout(resolve, 1_000, false)),
        ]));
      }
    }
    expect(stalled).toBe(true);
    expect(sent).toBeLessThan(limit);
    expect(bufferMemory() - before).toBeLessThan(64 * MiB);
    // Another client is served meanwhile.
    const listed = await runOk("nbdinfo", ["--list", "--json", `nbd://127.0.0.1:${port}`]);
    expect((JSON.parse(listed) as { exports: unknown[] }).exports).toHaveLength(16);
    flooder.close();
  });

  it("refuses connections past the per-address and total caps, and stays up", async () => {
    const port = await serve(new MemoryExportRegistry().add("disk", new MemoryDevice({ size: MiB })), { maxConnectionsPerAddress: 20 });
    const sockets = await Promise.all(
      Array.from(
        { length: 500 },
        () =>
          new Promise<{ socket: net.Socket; greeted: Promise<boolean> }>((resolve, reject) => {
            const socket = net.connect(port, "127.0.0.1");
            socket.on("error", () => undefined);
            const greeted = new Promise<boolean>((done) => {
              socket.once("data", () => done(true));
              socket.once("close", () => done(false));
            });
            socket.once("connect", () => resolve({ socket, greeted }));
            socket.once("error", reject);
          }),
      ),
    );
    const outcomes = await Promise.all(sockets.map((s) => s.greeted));
    expect(outcomes.filter(Boolean)).toHaveLength(20);
    for (const { socket } of sockets) socket.destroy();
    // Still serving once the flood is gone (its connections are counted until the server saw them close).
    const client = await greetedWithin(port, 10_000);
    expect((await client.option(NBD_OPT_LIST)).at(-1)?.replyType).toBe(NBD_REP_ACK);
    client.close();
    await server!.close();

    const total = await serve(new MemoryExportRegistry(), { maxConnections: 3 });
    const first = await Promise.all([0, 1, 2].map(() => RawNbdClient.connect(total)));
    await Promise.all(first.map((c) => c.greet()));
    const fourth = await RawNbdClient.connect(total);
    await fourth.closed;
    for (const c of first) c.close();
  });

  it("holds write payloads of all connections within one budget, and finishes every write once there is room", async () => {
    // A device whose writes wait for the test: payloads in flight pile up at the server.
    const memory = new MemoryDevice({ size: 64 * MiB });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let writing = 0;
    let peakWriting = 0;
    const device: BlockDevice = {
      size: memory.size,
      capabilities: memory.capabilities,
      read: (offset, target) => memory.read(offset, target),
      write: async (offset, data, options) => {
        writing += data.length;
        peakWriting = Math.max(peakWriting, writing);
        await gate;
        await memory.write(offset, data, options);
        writing -= data.length;
      },
      trim: (o, l, opts) => memory.trim(o, l, opts),
      writeZeroes: (o, l, opts) => memory.writeZeroes(o, l, opts),
      flush: () => memory.flush(),
      cache: (o, l) => memory.cache(o, l),
      blockStatus: (o, l) => memory.blockStatus(o, l),
    };
    const port = await serve(new MemoryExportRegistry().add("disk", device), { writeBudgetBytes: 4 * MiB });
    const clients = await Promise.all(
      [0, 1, 2].map(async () => {
        const c = await RawNbdClient.connect(port);
        await c.goTo("disk");
        return c;
      }),
    );
    // 3 connections x 8 writes of 1 MiB: 24 MiB offered, well within each connection's own limit.
    clients.forEach((c, i) => {
      for (let n = 0; n < 8; n++) c.request(NBD_CMD_WRITE, 0, n, (i * 8 + n) * MiB, MiB, Buffer.alloc(MiB, i * 8 + n + 1));
    });
    await waitFor(() => writing >= 4 * MiB, "the budget to fill with writes in progress");
    expect(server!.writeBudget.usedBytes).toBeLessThanOrEqual(4 * MiB);
    release();
    for (const c of clients) {
      for (let n = 0; n < 8; n++) expect(await c.readReply()).toMatchObject({ kind: "simple", error: 0 });
    }
    expect(peakWriting).toBeLessThanOrEqual(4 * MiB);
    expect(server!.writeBudget.peakBytes).toBeLessThanOrEqual(4 * MiB);
    expect(server!.writeBudget.usedBytes).toBe(0);
    const check = Buffer.alloc(MiB);
    for (let k = 0; k < 24; k++) {
      await memory.read(k * MiB, check);
      expect(check.every((b) => b === k + 1)).toBe(true);
    }
    for (const c of clients) c.close();
  });

  it("times out a silent handshake and an idle connection, on the server's clock", async () => {
    const clock = new ManualClock();
    const port = await serve(new MemoryExportRegistry().add("disk", new MemoryDevice({ size: MiB })), {
      clock,
      handshakeTimeoutMs: 30_000,
      idleTimeoutMs: 60_000,
    });

    const silent = await RawNbdClient.connect(port);
    await silent.read(18); // the greeting; no client flags ever follow
    clock.advance(29_000);
    expect(silent.isClosed).toBe(false);
    clock.advance(1_000);
    await silent.closed;

    const user = await RawNbdClient.connect(port);
    await user.goTo("disk");
    clock.advance(59_000);
    user.request(NBD_CMD_READ, 0, 1, 0, 4096);
    expect(await user.readReply(4096)).toMatchObject({ kind: "simple", error: 0 });
    // A request moved the idle clock: a minute after the first connection, this one is still open.
    clock.advance(2_000);
    expect(user.isClosed).toBe(false);
    clock.advance(58_000);
    await user.closed;
  });
});
