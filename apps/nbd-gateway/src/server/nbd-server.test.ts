/**
 * The NBD server against real clients over TCP on 127.0.0.1: nbdinfo, nbdsh (libnbd) and
 * qemu-io, with in-memory devices behind a test registry.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryDevice } from "../testing/memory-device";
import { MemoryExportRegistry } from "../testing/memory-export-registry";
import { nbdsh, run, runOk, seededRandom, waitFor } from "../testing/nbd-tools";
import { createNbdServer } from "./nbd-server";
import type { NbdServer } from "./nbd-server";
import { TurnBudget } from "./turn-budget";

const MiB = 1024 * 1024;
const UNIT = 64 * 1024;

describe("NBD server with real clients", () => {
  let server: NbdServer;
  let registry: MemoryExportRegistry;
  let disk: MemoryDevice;
  let shared: MemoryDevice;
  let base: string;

  beforeAll(async () => {
    const random = seededRandom(7);
    disk = new MemoryDevice({ size: 64 * MiB, allocationUnit: UNIT });
    // Random completion delays make replies leave out of order under queue depth.
    shared = new MemoryDevice({ size: 32 * MiB, allocationUnit: UNIT, delay: () => (random() < 0.5 ? Math.floor(random() * 3) : 0) });
    registry = new MemoryExportRegistry()
      .add("disk", disk, "a test disk")
      .add("shared", shared, "shared by several connections")
      .add("ro", new MemoryDevice({ size: 4 * MiB, capabilities: { readOnly: true } }), "read-only")
      .add("plain", new MemoryDevice({ size: 4 * MiB, capabilities: { canMultiConn: false, canFastZero: false, canCache: false, canTrim: false } }));
    server = createNbdServer({ registry, logger: pino({ level: "silent" }) });
    const { port } = await server.listen(0, "127.0.0.1");
    base = `nbd://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await waitFor(() => registry.openCount === 0, "clients to disconnect");
    await server.close();
    // Every connection released what it opened, exactly once (a double release throws).
    expect(registry.openCount).toBe(0);
  });

  it("nbdinfo --list shows every export with its description", async () => {
    const out = JSON.parse(await runOk("nbdinfo", ["--list", "--json", base])) as {
      exports: { "export-name": string; description?: string }[];
    };
    const names = out.exports.map((e) => e["export-name"]).sort();
    expect(names).toEqual(["disk", "plain", "ro", "shared"]);
    expect(out.exports.find((e) => e["export-name"] === "disk")?.description).toBe("a test disk");
    const text = await runOk("nbdinfo", ["--list", base]);
    expect(text).toContain('export="shared"');
  });

  it("nbdinfo --json reports size, capabilities from the device and block sizes", async () => {
    const info = JSON.parse(await runOk("nbdinfo", ["--json", `${base}/disk`])) as {
      exports: Record<string, unknown>[];
      protocol: string;
    };
    const e = info.exports[0]!;
    expect(info.protocol).toBe("newstyle-fixed");
    expect(e).toMatchObject({
      "export-size": 64 * MiB,
      is_read_only: false,
      can_flush: true,
      can_fua: true,
      can_trim: true,
      can_zero: true,
      can_fast_zero: true,
      can_cache: true,
      can_multi_conn: true,
      block_size_minimum: 1,
      block_size_preferred: 4096,
      block_size_maximum: 32 * MiB,
    });
    const plain = JSON.parse(await runOk("nbdinfo", ["--json", `${base}/plain`])) as { exports: Record<string, unknown>[] };
    expect(plain.exports[0]).toMatchObject({ can_multi_conn: false, can_trim: false, can_cache: false });
    const ro = JSON.parse(await runOk("nbdinfo", ["--json", `${base}/ro`])) as { exports: Record<string, unknown>[] };
    expect(ro.exports[0]).toMatchObject({ is_read_only: true, can_trim: false, can_zero: false });
  });

  it("nbdinfo --map reports a fresh export as one hole, then the written extent as data", async () => {
    const fresh = new MemoryDevice({ size: 8 * MiB, allocationUnit: UNIT });
    registry.add("fresh", fresh);
    expect((await runOk("nbdinfo", ["--map", `${base}/fresh`])).trim().split("\n")).toEqual([expect.stringMatching(/^\s*0\s+8388608\s+3\s+hole,zero$/)]);
    await fresh.write(UNIT, Buffer.alloc(10, 1));
    const lines = (await runOk("nbdinfo", ["--map", `${base}/fresh`])).trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^\s*65536\s+65536\s+0\s+data$/);
  });

  it("nbdsh: structured reads send holes as OFFSET_HOLE and data as OFFSET_DATA", async () => {
    await disk.write(2 * UNIT + 100, Buffer.alloc(1000, 0x5a));
    const result = await nbdsh<{ chunks: [number, number, number][]; data: string }>(
      `${base}/disk`,
      `
chunks = []
def cb(subbuf, offset, status, err):
    chunks.append([offset, len(subbuf), status])
    return 0
buf = h.pread_structured(4 * ${UNIT}, ${UNIT}, cb)
chunks.sort()
print(json.dumps({"chunks": chunks, "data": buf[${UNIT} + 100: ${UNIT} + 1100].hex()}))
`,
    );
    // [UNIT, 2*UNIT) hole, [2*UNIT, 3*UNIT) data, [3*UNIT, 5*UNIT) hole
    expect(result.chunks).toEqual([
      [UNIT, UNIT, 2], // LIBNBD_READ_HOLE
      [2 * UNIT, UNIT, 1], // LIBNBD_READ_DATA
      [3 * UNIT, 2 * UNIT, 2],
    ]);
    expect(result.data).toBe("5a".repeat(1000));
  });

  it("nbdsh: block status, trim, zero with NO_HOLE and FAST_ZERO, cache, flush and FUA", async () => {
    const base0 = 16 * MiB;
    const result = await nbdsh<Record<string, unknown>>(
      `${base}/disk`,
      `
out = {}
h.pwrite(b"\\x11" * ${4 * UNIT}, ${base0}, nbd.CMD_FLAG_FUA)
def extents_of(offset, count, flags=0):
    got = []
    def cb(ctx, off, entries, err):
        got.extend(entries)
        return 0
    h.block_status(count, offset, cb, flags)
    return got
out["after_write"] = extents_of(${base0 - UNIT}, ${6 * UNIT})
out["req_one"] = extents_of(${base0 - UNIT}, ${6 * UNIT}, nbd.CMD_FLAG_REQ_ONE)
h.trim(${UNIT}, ${base0}, nbd.CMD_FLAG_FUA)
h.zero(${UNIT}, ${base0 + UNIT}, nbd.CMD_FLAG_NO_HOLE)
h.zero(${UNIT}, ${base0 + 2 * UNIT}, nbd.CMD_FLAG_FAST_ZERO)
h.zero(100, ${base0 + 3 * UNIT} + 10)
out["after_zero"] = extents_of(${base0}, ${4 * UNIT})
h.cache(${UNIT}, 0)
h.flush()
data = h.pread(${4 * UNIT}, ${base0})
out["zeroed"] = data[:${3 * UNIT}] == bytes(${3 * UNIT})
out["partial"] = [data[${3 * UNIT} + 9], data[${3 * UNIT} + 10], data[${3 * UNIT} + 109], data[${3 * UNIT} + 110]]
out["eof_read"] = errno_of(lambda: h.pread(2, ${64 * MiB - 1}))
out["eof_write"] = errno_of(lambda: h.pwrite(b"ab", ${64 * MiB - 1}))
print(json.dumps(out))
`,
    );
    expect(result.after_write).toEqual([UNIT, 3, 4 * UNIT, 0, UNIT, 3]);
    expect(result.req_one).toEqual([UNIT, 3]);
    // trim and the default zero punch holes; NO_HOLE keeps the unit allocated; partial zero stays data.
    expect(result.after_zero).toEqual([UNIT, 3, UNIT, 0, UNIT, 3, UNIT, 0]);
    expect(result.zeroed).toBe(true);
    expect(result.partial).toEqual([0x11, 0, 0, 0x11]);
    // libnbd checks bounds itself and reports EINVAL for both without sending them.
    expect(result.eof_read).not.toBe(0);
    expect(result.eof_write).not.toBe(0);
    const ops = disk.calls.filter((c) => c.offset >= base0 - UNIT || c.operation === "flush" || c.operation === "cache");
    expect(ops.find((c) => c.operation === "write")?.options).toEqual({ fua: true });
    expect(ops.find((c) => c.operation === "trim")?.options).toEqual({ fua: true });
    expect(ops.filter((c) => c.operation === "writeZeroes").map((c) => c.options)).toEqual([
      { fua: false, noHole: true, fastZero: false },
      { fua: false, noHole: false, fastZero: true },
      { fua: false, noHole: false, fastZero: false },
    ]);
    expect(ops.some((c) => c.operation === "flush")).toBe(true);
    expect(ops.some((c) => c.operation === "cache")).toBe(true);
  });

  it("nbdsh: FAST_ZERO the device cannot honour fails fast with ENOTSUP; read-only refuses writes with EPERM", async () => {
    const plain = await nbdsh<{ fast: number; slow: number }>(
      `${base}/plain`,
      `print(json.dumps({"fast": errno_of(lambda: h.zero(4096, 0, nbd.CMD_FLAG_FAST_ZERO)), "slow": errno_of(lambda: h.zero(4096, 0))}))`,
    );
    expect(plain).toEqual({ fast: "ENOTSUP", slow: 0 });
    const ro = await nbdsh<{ write: number; read: number }>(
      `${base}/ro`,
      `print(json.dumps({"write": errno_of(lambda: h.pwrite(b"x", 0)), "read": errno_of(lambda: h.pread(10, 0))}))`,
    );
    // libnbd refuses writes on a read-only export itself; the raw-frame tests check our EPERM.
    expect(ro.write).not.toBe(0);
    expect(ro.read).toBe(0);
  });

  it("qemu-io: aio write/read/discard/write -z patterns with replies out of order", async () => {
    const uri = `${base}/shared`;
    const commands: string[] = [];
    for (let i = 0; i < 32; i++) commands.push("-c", `aio_write -P ${(i % 250) + 1} ${i * 128 * 1024} 64k`);
    commands.push("-c", "aio_flush");
    for (let i = 0; i < 32; i++) commands.push("-c", `aio_read -P ${(i % 250) + 1} ${i * 128 * 1024} 64k`);
    commands.push("-c", "aio_flush");
    commands.push("-c", "discard 0 128k", "-c", "aio_write -z 131072 64k", "-c", "aio_flush");
    commands.push("-c", "read -P 0 0 192k", "-c", "read -P 3 256k 64k");
    // qemu ignores discards unless told to pass them down (-d unmap).
    const out = await runOk("qemu-io", ["-f", "raw", "-d", "unmap", uri, ...commands]);
    expect(out).not.toMatch(/fail|error|Pattern verification/i);
    expect(out.match(/^read /gm)?.length).toBe(34);
  });

  it("qemu-io: pipelined writes of mixed sizes (large payloads are read straight into their buffers) all land", async () => {
    const uri = `${base}/shared`;
    // Sizes around the 64 KiB line where payloads stop being copied out of the shared read buffer,
    // large ones back to back (the header-only read after each), small ones and reads in between.
    const sizes = [1024 * 1024, 65536, 65536 - 512, 4096, 1024 * 1024 + 4096, 512, 256 * 1024, 65536 + 512, 2 * 1024 * 1024];
    const commands: string[] = [];
    let offset = 0;
    const written: Array<[number, number, number]> = [];
    for (let round = 0; round < 3; round++) {
      for (const [n, size] of sizes.entries()) {
        const pattern = ((round * sizes.length + n) % 250) + 1;
        commands.push("-c", `aio_write -P ${pattern} ${offset} ${size}`);
        if (n % 3 === 2 && written.length > 0) commands.push("-c", `aio_read -P ${written[0]![2]} ${written[0]![0]} ${written[0]![1]}`);
        written.push([offset, size, pattern]);
        offset += size;
      }
    }
    commands.push("-c", "aio_flush");
    for (const [at, size, pattern] of written) commands.push("-c", `read -P ${pattern} ${at} ${size}`);
    const out = await runOk("qemu-io", ["-f", "raw", uri, ...commands]);
    expect(out).not.toMatch(/fail|error|Pattern verification/i);
    expect(out.match(/^read /gm)?.length).toBe(written.length + 9);
  });

  it("several connections share one device and see each other's writes", async () => {
    const uri = `${base}/shared`;
    const writers = [0, 1, 2, 3].map((n) => runOk("qemu-io", ["-f", "raw", uri, "-c", `write -P ${0x40 + n} ${8 * MiB + n * MiB} 1M`, "-c", "flush"]));
    await Promise.all(writers);
    const check = await runOk("qemu-io", ["-f", "raw", uri, ...[0, 1, 2, 3].flatMap((n) => ["-c", `read -P ${0x40 + n} ${8 * MiB + n * MiB} 1M`])]);
    expect(check).not.toMatch(/Pattern verification failed/);
    await waitFor(() => registry.openByName.get("shared") === 0, "every connection to release the shared export");
  });

  it("a client that disconnects releases its export at once, not after the server's grace period", async () => {
    await runOk("qemu-io", ["-f", "raw", `${base}/plain`, "-c", "write -P 9 0 64k"]);
    // The server waits up to 2 s for a client that never closes its side; this one closes at once.
    await waitFor(() => registry.openByName.get("plain") === 0, "the export to be released", 1_000);
  });

  it("an unknown export is refused by nbdinfo with the server's message", async () => {
    const result = await run("nbdinfo", [`${base}/missing`]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/missing/);
  });
});

describe("NBD server taking in a fast copy a few bytes per event-loop turn", () => {
  /** Counts the turns a connection had to wait for. */
  class CountingBudget extends TurnBudget {
    waits = 0;
    override waitForNextTurn(resume: () => void): void {
      this.waits++;
      super.waitForNextTurn(resume);
    }
  }

  it("yields between turns and still takes in every byte, in order, over four connections under backpressure", async () => {
    const budget = new CountingBudget(256 * 1024);
    const random = seededRandom(11);
    const device = new MemoryDevice({ size: 24 * MiB, allocationUnit: UNIT, delay: () => (random() < 0.3 ? Math.floor(random() * 3) : 0) });
    const registry = new MemoryExportRegistry().add("copy", device, "written by nbdcopy");
    // Little room in flight, so pauses for pressure and for the turn budget overlap.
    const server = createNbdServer({ registry, logger: pino({ level: "silent" }), turnBudget: budget, maxInFlightBytes: 2 * MiB });
    const { port } = await server.listen(0, "127.0.0.1");
    const dir = await mkdtemp(path.join(tmpdir(), "nbd-turns-"));
    try {
      const source = path.join(dir, "source");
      const data = Buffer.alloc(24 * MiB);
      for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
      await writeFile(source, data);
      const uri = `nbd://127.0.0.1:${port}/copy`;
      await runOk("nbdcopy", ["--connections=4", "--requests=16", "--flush", source, uri], 60_000);
      expect(budget.waits).toBeGreaterThan(0);
      const copy = path.join(dir, "copy");
      await runOk("nbdcopy", [uri, copy], 60_000);
      expect((await readFile(copy)).equals(data)).toBe(true);
      await waitFor(() => registry.openCount === 0, "clients to disconnect");
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
