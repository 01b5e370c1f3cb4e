/**
 * Fills whose bytes are page-aligned are held back, then written with O_DIRECT, and land cold and
 * without a descriptor: readers are served the fetched bytes meanwhile, and a cold chunk is warmed
 * off the event loop before the hot path reads it. The injected writer records each write's
 * descriptor flags.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { constants } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../testing/manual-clock";
import { seededBytes } from "../testing/seeded-random";
import { waitFor } from "../testing/wait-for";
import { CacheBudget } from "./cache-budget";
import { DirectIoBufferPool } from "./direct-io-buffers";
import { DiskCache } from "./disk-cache";
import { writeFileFully, type FillWriter } from "./fill-writer";

const CHUNK = 64 * 1024;
const GENERATION = 65_536;
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The O_DIRECT flag of an open descriptor, from /proc (fcntl is not in node:fs). */
function isDirect(fd: number): boolean {
  const flags = Number.parseInt(/flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1]!, 8);
  return (flags & constants.O_DIRECT) !== 0;
}

function setup(options: { fillDelayBytes?: number; directFills?: boolean; clock?: ManualClock } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "stratus-direct-fill-"));
  dirs.push(dir);
  const budget = new CacheBudget({ targetBytes: 64 * CHUNK, dirtyLimitBytes: 64 * CHUNK });
  const written: Array<{ direct: boolean; first: number }> = [];
  const writer: FillWriter = async (fd, data) => {
    written.push({ direct: isDirect(fd), first: data[0]! });
    await writeFileFully(fd, data);
  };
  const open = () =>
    DiskCache.open(
      {
        dir,
        budget,
        chunkLength: () => CHUNK,
        chunkCount: 16,
        fillWriter: writer,
        fillDelayBytes: options.fillDelayBytes ?? 2 * CHUNK,
        directFills: options.directFills,
        clock: options.clock,
      },
      () => true,
    );
  return { dir, open, written, chunkFile: (index: number) => path.join(dir, "c", index.toString(16).padStart(16, "0")) };
}

/** Fetched-looking bytes in page-aligned memory, as ChunkStore hands them out. */
function alignedChunk(pool: DirectIoBufferPool, seed: number): Buffer {
  const buffer = pool.acquire(CHUNK);
  seededBytes(CHUNK, seed).copy(buffer);
  return buffer;
}

function readChunk(cache: DiskCache, index: number): Buffer {
  const out = Buffer.alloc(CHUNK);
  cache.readInto(cache.get(index)!, 0, out, 0, CHUNK);
  return out;
}

describe("direct fills", () => {
  it("are held back until fillDelayBytes wait, then written oldest first with O_DIRECT, and land cold", async () => {
    const { open, written, chunkFile } = setup({ fillDelayBytes: 2 * CHUNK });
    const pool = new DirectIoBufferPool();
    const cache = open();
    const chunks = [1, 2, 3].map((seed) => alignedChunk(pool, seed));
    expect(cache.fillClean(1, GENERATION, chunks[0]!)).toBe(true);
    expect(cache.fillClean(2, GENERATION, chunks[1]!)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(written).toEqual([]); // held: readers get the fetched bytes
    expect(cache.filling(1)?.equals(seededBytes(CHUNK, 1))).toBe(true);

    expect(cache.fillClean(3, GENERATION, chunks[2]!)).toBe(true); // a third: the oldest goes
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(written).toEqual([{ direct: true, first: chunks[0]![0] }]);
    await cache.fillsSettled(); // starts the rest too
    expect(written.length).toBe(3);
    expect(written.every((write) => write.direct)).toBe(true);
    for (const index of [1, 2, 3]) {
      const entry = cache.get(index)!;
      expect(entry.cold).toBe(true);
      expect(entry.fd).toBe(-1); // no descriptor until a reader comes back: a cold read opens nothing twice
      expect(readFileSync(chunkFile(index)).equals(seededBytes(CHUNK, index))).toBe(true);
      await cache.warm(entry);
      expect(entry.cold).toBe(false);
      expect(isDirect(entry.fd)).toBe(false); // warming opened it, buffered, for the hot path
      expect(readChunk(cache, index).equals(seededBytes(CHUNK, index))).toBe(true);
    }
    cache.close(true);
  });

  it("are written once no new fill came for two seconds (a reader that stopped)", async () => {
    const clock = new ManualClock();
    const { open, written } = setup({ fillDelayBytes: 8 * CHUNK, clock });
    const cache = open();
    expect(cache.fillClean(1, GENERATION, alignedChunk(new DirectIoBufferPool(), 1))).toBe(true);
    await clock.advance(1999);
    expect(written.length).toBe(0);
    await clock.advance(1);
    await waitFor(() => cache.get(1) !== undefined, "the held fill to land");
    expect(written).toEqual([{ direct: true, first: seededBytes(CHUNK, 1)[0] }]);
    expect(cache.get(1)!.cold).toBe(true);
    cache.close(true);
  });

  it("start at once where the bytes are not aligned, or direct fills are off: buffered, landing warm", async () => {
    for (const [directFills, aligned] of [
      [true, false],
      [false, true],
    ] as const) {
      const { open, written } = setup({ directFills });
      const cache = open();
      const data = aligned ? alignedChunk(new DirectIoBufferPool(), 4) : seededBytes(CHUNK, 4);
      expect(cache.fillClean(5, GENERATION, data)).toBe(true);
      await cache.fillSettled(5);
      expect(written).toEqual([{ direct: false, first: data[0] }]);
      expect(cache.get(5)!.cold).toBe(false);
      expect(readChunk(cache, 5).equals(seededBytes(CHUNK, 4))).toBe(true);
      cache.close(true);
    }
  });

  it("a held fill starts when someone waits for it (NBD_CMD_CACHE), and a write to its chunk drops it unwritten", async () => {
    const { open, written } = setup({ fillDelayBytes: 8 * CHUNK });
    const pool = new DirectIoBufferPool();
    const cache = open();
    expect(cache.fillClean(1, GENERATION, alignedChunk(pool, 1))).toBe(true);
    expect(cache.fillClean(2, GENERATION, alignedChunk(pool, 2))).toBe(true);
    await cache.fillSettled(1);
    expect(written.length).toBe(1);
    expect(cache.get(1)).toBeDefined();

    // A whole-chunk write overtakes the held fill of chunk 2: the fill must never land over it.
    const newer = Buffer.alloc(CHUNK, 9);
    expect(cache.write(2, 0, CHUNK, newer, 0, true)).toBe(true);
    expect(cache.filling(2)).toBeUndefined();
    await cache.fillsSettled();
    expect(written.length).toBe(1);
    expect(readChunk(cache, 2).equals(newer)).toBe(true);
    cache.close(true);
  });

  it("a close drops held fills without a file left behind; clean chunks found at open are cold until warmed", async () => {
    const { open, written, dir } = setup({ fillDelayBytes: 8 * CHUNK });
    const pool = new DirectIoBufferPool();
    const cache = open();
    expect(cache.fillClean(1, GENERATION, alignedChunk(pool, 1))).toBe(true);
    await cache.fillSettled(1);
    expect(cache.fillClean(2, GENERATION, alignedChunk(pool, 2))).toBe(true);
    cache.close(true);
    await cache.fillsSettled();
    expect(written.length).toBe(1);
    expect(readdirSync(path.join(dir, "c")).length).toBe(1);
    expect(readdirSync(path.join(dir, "spare")).filter((name) => !name.startsWith("s"))).toEqual([]);

    const reopened = open();
    const entry = reopened.get(1)!;
    expect(entry.cold).toBe(true); // after a reboot its pages would be on disk only
    expect(reopened.get(2)).toBeUndefined();
    await Promise.all([reopened.warm(entry), reopened.warm(entry)]);
    expect(entry.cold).toBe(false);
    expect(readChunk(reopened, 1).equals(seededBytes(CHUNK, 1))).toBe(true);
    reopened.close(true);
  });
});
