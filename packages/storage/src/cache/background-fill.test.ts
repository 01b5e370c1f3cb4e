/**
 * Fetched chunks enter the cache in the background: readers get the fetched bytes until the file
 * is in place, and whatever happens meanwhile (a write, a commit and an eviction, a close, a full
 * disk) the fill never overwrites newer content, leaks a descriptor or file, or outlives close.
 * The injected writer holds each fill's write until the test releases it.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { seededBytes } from "../testing/seeded-random";
import { CacheBudget } from "./cache-budget";
import { DiskCache } from "./disk-cache";
import { writeFileFully, type FillWriter } from "./fill-writer";

const CHUNK = 64 * 1024;
const GENERATION = 65_536;
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fill writer whose writes wait until released (with success, or an error to throw). */
function heldWriter() {
  const held: Array<(error?: Error) => void> = [];
  const arrivals: Array<() => void> = [];
  let calls = 0;
  const writer: FillWriter = (fd, data) => {
    calls++;
    arrivals.shift()?.();
    return new Promise<void>((resolve, reject) => {
      held.push((error) => {
        // The returned promise takes the write's outcome, a rejection included.
        if (error === undefined) void writeFileFully(fd, data).then(resolve, reject);
        else reject(error);
      });
    });
  };
  return {
    writer,
    get calls() {
      return calls;
    },
    /** Resolves once `count` writes are waiting. */
    async waiting(count: number): Promise<void> {
      while (held.length < count) await new Promise<void>((resolve) => arrivals.push(resolve));
    },
    release(error?: Error): void {
      held.shift()!(error);
    },
  };
}

function setup(options: { targetChunks?: number; maxFillingBytes?: number } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "stratus-fill-"));
  dirs.push(dir);
  const budget = new CacheBudget({ targetBytes: (options.targetChunks ?? 64) * CHUNK, dirtyLimitBytes: 64 * CHUNK });
  const writes = heldWriter();
  const open = (keepClean: (index: number, generation: number) => boolean = () => true) =>
    DiskCache.open({ dir, budget, chunkLength: () => CHUNK, chunkCount: 16, fillWriter: writes.writer, maxFillingBytes: options.maxFillingBytes }, keepClean);
  const chunkFiles = () => readdirSync(path.join(dir, "c"));
  const fillFiles = () => readdirSync(path.join(dir, "spare")).filter((name) => !name.startsWith("s"));
  return { budget, writes, open, chunkFiles, fillFiles };
}

function readChunk(cache: DiskCache, index: number): Buffer {
  const out = Buffer.alloc(CHUNK);
  cache.readInto(cache.get(index)!, 0, out, 0, CHUNK);
  return out;
}

function openDescriptors(): number {
  return readdirSync("/proc/self/fd").length;
}

function noSpaceError(): Error {
  return Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28 });
}

describe("background cache fills", () => {
  it("serve readers the fetched bytes until the file is in place, then the file (journalled clean)", async () => {
    const { open, writes, chunkFiles, fillFiles, budget } = setup();
    const cache = open();
    const fetched = seededBytes(CHUNK, 1);
    expect(cache.fillClean(3, GENERATION, fetched)).toBe(true);
    await writes.waiting(1);
    expect(cache.get(3)).toBeUndefined();
    expect(cache.filling(3)?.equals(fetched)).toBe(true);
    expect(chunkFiles()).toEqual([]); // nothing under the chunk's name before the write is done
    expect(budget.cachedBytes).toBe(CHUNK); // counted from the start

    writes.release();
    await cache.fillSettled(3);
    expect(cache.filling(3)).toBeUndefined();
    expect(readChunk(cache, 3).equals(fetched)).toBe(true);
    expect(cache.cachedBytes).toBe(CHUNK);
    expect(budget.cachedBytes).toBe(CHUNK);
    expect(fillFiles()).toEqual([]);

    cache.close(false); // a crash: only the journal says what is cached
    const reopened = open((index, generation) => index === 3 && generation === GENERATION);
    expect(readChunk(reopened, 3).equals(fetched)).toBe(true);
    reopened.close(true);
  });

  const changes = [
    [
      "a partial write (content adopted from the fill first)",
      (cache: DiskCache, patch: Buffer) => {
        cache.adoptFetched(3, cache.filling(3)!);
        expect(cache.write(3, 100, patch.length, patch, 0, true)).toBe(true);
      },
    ],
    [
      "a whole-chunk write",
      (cache: DiskCache, patch: Buffer) => {
        const whole = Buffer.alloc(CHUNK, 7);
        patch.copy(whole, 100);
        expect(cache.write(3, 0, CHUNK, whole, 0, true)).toBe(true);
      },
    ],
    ["a trim of the whole chunk", (cache: DiskCache) => cache.punchHole(3, true)],
  ] as const;

  for (const [name, change] of changes) {
    it(`lose to ${name} that arrives during the fill`, async () => {
      const { open, writes, fillFiles, budget } = setup();
      const cache = open();
      const fetched = seededBytes(CHUNK, 2);
      const patch = seededBytes(300, 3);
      cache.fillClean(3, GENERATION, fetched);
      await writes.waiting(1);
      change(cache, patch);
      const expected = Buffer.from(readChunk(cache, 3));
      expect(cache.filling(3)).toBeUndefined(); // readers see the write from now on

      writes.release();
      await cache.fillSettled(3);
      await cache.fillsSettled();
      expect(cache.get(3)!.dirty).toBe(true);
      expect(readChunk(cache, 3).equals(expected)).toBe(true);
      expect(budget.cachedBytes).toBe(cache.cachedBytes); // the fill's reservation is gone
      expect(fillFiles()).toEqual([]);

      cache.close(false);
      const reopened = open();
      expect(reopened.dirtyIndexes()).toEqual([3]);
      expect(readChunk(reopened, 3).equals(expected)).toBe(true);
      reopened.close(true);
    });
  }

  it("do not resurrect old content after a write, its commit and an eviction", async () => {
    const { open, writes, chunkFiles, budget } = setup();
    const cache = open();
    cache.fillClean(3, GENERATION, seededBytes(CHUNK, 4));
    await writes.waiting(1);
    expect(cache.write(3, 0, CHUNK, seededBytes(CHUNK, 5), 0, true)).toBe(true);
    const [frozen] = cache.freezeDirty();
    cache.readFrozen(frozen!);
    cache.settle(frozen!, 2 * GENERATION);
    expect(budget.evictAllClean()).toBe(CHUNK);
    expect(cache.get(3)).toBeUndefined();

    writes.release();
    await cache.fillsSettled();
    expect(cache.get(3)).toBeUndefined();
    expect(cache.filling(3)).toBeUndefined();
    expect(chunkFiles()).toEqual([]);
    expect(budget.cachedBytes).toBe(0);
    cache.close(false);
    const reopened = open();
    expect(reopened.get(3)).toBeUndefined();
    reopened.close(true);
  });

  it("abandoned by close never write, and leave no descriptor or file behind", async () => {
    const { open, writes, fillFiles, budget } = setup();
    const before = openDescriptors();
    const cache = open();
    cache.fillClean(3, GENERATION, seededBytes(CHUNK, 6));
    cache.close(true); // before the fill's file was even open
    await Promise.race([cache.fillsSettled(), writes.waiting(1)]); // a write would be held: stop waiting for it
    expect(writes.calls).toBe(0);
    expect(fillFiles()).toEqual([]);
    expect(budget.cachedBytes).toBe(0);
    expect(openDescriptors()).toBe(before);
  });

  it("abandoned by close while writing land nowhere, even once the cache is reopened", async () => {
    const { open, writes, chunkFiles, fillFiles, budget } = setup();
    const before = openDescriptors();
    const cache = open();
    cache.fillClean(3, GENERATION, seededBytes(CHUNK, 7));
    await writes.waiting(1);
    cache.close(false);
    expect(budget.cachedBytes).toBe(0);
    const reopened = open();
    writes.release(); // the old instance's write finishes after the new one took over the directory
    await cache.fillsSettled();
    expect(reopened.get(3)).toBeUndefined();
    expect(chunkFiles()).toEqual([]);
    expect(fillFiles()).toEqual([]);
    reopened.close(true);
    expect(openDescriptors()).toBe(before);
  });

  it("refused by a full disk leave the chunk uncached, and a later fill works", async () => {
    const { open, writes, chunkFiles, fillFiles, budget } = setup();
    const before = openDescriptors();
    const cache = open();
    const fetched = seededBytes(CHUNK, 8);
    cache.fillClean(3, GENERATION, fetched);
    await writes.waiting(1);
    writes.release(noSpaceError());
    await cache.fillSettled(3);
    expect(cache.get(3)).toBeUndefined();
    expect(cache.filling(3)).toBeUndefined();
    expect(chunkFiles()).toEqual([]);
    expect(fillFiles()).toEqual([]);
    expect(budget.cachedBytes).toBe(0);

    expect(cache.fillClean(3, GENERATION, fetched)).toBe(true);
    await writes.waiting(1);
    writes.release();
    await cache.fillSettled(3);
    expect(readChunk(cache, 3).equals(fetched)).toBe(true);
    cache.close(true);
    expect(openDescriptors()).toBe(before);
  });

  it("in flight are bounded by maxFillingBytes and by the budget's target", async () => {
    const bounded = setup({ maxFillingBytes: 2 * CHUNK });
    const cache = bounded.open();
    expect(cache.fillClean(1, GENERATION, seededBytes(CHUNK, 9))).toBe(true);
    expect(cache.fillClean(2, GENERATION, seededBytes(CHUNK, 10))).toBe(true);
    expect(cache.fillClean(3, GENERATION, seededBytes(CHUNK, 11))).toBe(false);
    expect(cache.filling(3)).toBeUndefined();
    await bounded.writes.waiting(2);
    bounded.writes.release();
    // The first write to arrive is released: chunk 1's or chunk 2's (their files open in the thread pool).
    await Promise.race([cache.fillSettled(1), cache.fillSettled(2)]);
    expect(cache.fillClean(3, GENERATION, seededBytes(CHUNK, 11))).toBe(true); // room again
    await bounded.writes.waiting(2);
    bounded.writes.release();
    bounded.writes.release();
    await cache.fillsSettled();
    expect(cache.get(3)).toBeDefined();
    cache.close(true);

    // A target of two chunks, one of them dirty: room for one fill, which eviction cannot reclaim.
    const small = setup({ targetChunks: 2 });
    const other = small.open();
    other.write(0, 0, CHUNK, seededBytes(CHUNK, 12), 0, false);
    expect(other.fillClean(1, GENERATION, seededBytes(CHUNK, 13))).toBe(true);
    expect(other.fillClean(2, GENERATION, seededBytes(CHUNK, 14))).toBe(false);
    expect(small.budget.cachedBytes).toBeLessThanOrEqual(small.budget.targetBytes);
    await small.writes.waiting(1);
    other.close(true);
    small.writes.release();
    await other.fillsSettled();
    expect(small.fillFiles()).toEqual([]);
  });
});
