/**
 * A commit uploads each frozen chunk as it was at the freeze, whatever is written to it before
 * the upload reads it: through the undo log (small writes), a full in-memory copy (many writes),
 * a file aside (past the memory allowance), or a punched hole.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { seededBytes, seededRandom } from "../testing/seeded-random";
import { CacheBudget } from "./cache-budget";
import { DiskCache } from "./disk-cache";

const CHUNK = 64 * 1024;
const dirs: string[] = [];

function openCache(maxFrozenMemoryBytes?: number): DiskCache {
  const dir = mkdtempSync(path.join(os.tmpdir(), "stratus-frozen-"));
  dirs.push(dir);
  const budget = new CacheBudget({ targetBytes: 64 * CHUNK, dirtyLimitBytes: 64 * CHUNK });
  return DiskCache.open({ dir, budget, chunkLength: () => CHUNK, chunkCount: 16, maxFrozenMemoryBytes }, () => true);
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function readChunk(cache: DiskCache, index: number): Buffer {
  const out = Buffer.alloc(CHUNK);
  cache.readInto(cache.get(index)!, 0, out, 0, CHUNK);
  return out;
}

describe("frozen chunk content", () => {
  // The small case writes within the first 6 KiB so its writes overlap: the undo log's order matters.
  for (const [name, writes, region, memory] of [
    ["a few overlapping small writes (undo log)", 6, 6144, undefined],
    ["many writes (full copy in memory)", 400, CHUNK, undefined],
    ["many writes past the memory allowance (file aside)", 400, CHUNK, 8 * 1024],
  ] as const) {
    it(`is the content at the freeze after ${name}`, () => {
      const cache = openCache(memory);
      const random = seededRandom(writes);
      const original = seededBytes(CHUNK, 7);
      cache.write(3, 0, CHUNK, original, 0, false);
      const [frozen] = cache.freezeDirty();
      const model = Buffer.from(original);
      for (let i = 0; i < writes; i++) {
        const length = 1 + Math.floor(random() * 2048);
        const within = Math.floor(random() * (region - length));
        const zeros = random() < 0.2;
        const data = zeros ? null : seededBytes(length, 100 + i);
        cache.write(3, within, length, data, 0, false);
        if (data) data.copy(model, within);
        else model.fill(0, within, within + length);
      }
      expect(readChunk(cache, 3).equals(model)).toBe(true);
      expect(cache.readFrozen(frozen!)!.equals(original)).toBe(true);
      cache.release(frozen!);
      cache.close(false);
    });
  }

  it("is the content at the freeze after a whole-chunk overwrite (old file kept by a link), and later writes go to the new file", () => {
    const cache = openCache();
    const original = seededBytes(CHUNK, 11);
    cache.write(6, 0, CHUNK, original, 0, false);
    const [frozen] = cache.freezeDirty();
    const replacement = seededBytes(CHUNK, 12);
    cache.write(6, 0, CHUNK, replacement, 0, false);
    const patch = seededBytes(4096, 13);
    cache.write(6, 8192, 4096, patch, 0, false);
    patch.copy(replacement, 8192);
    expect(readChunk(cache, 6).equals(replacement)).toBe(true);
    expect(cache.readFrozen(frozen!)!.equals(original)).toBe(true);
    cache.release(frozen!);
    cache.close(false);
  });

  it("is the content at the freeze when the chunk was written and then punched", () => {
    const cache = openCache();
    const original = seededBytes(CHUNK, 9);
    cache.write(5, 0, CHUNK, original, 0, false);
    const [frozen] = cache.freezeDirty();
    cache.write(5, 100, 4096, seededBytes(4096, 10), 0, false);
    cache.punchHole(5, false);
    expect(cache.readFrozen(frozen!)!.equals(original)).toBe(true);
    cache.release(frozen!);
    cache.close(false);
  });
});
