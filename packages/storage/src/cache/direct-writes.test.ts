/**
 * Large page-aligned writes into a new or cold chunk go to the disk with O_DIRECT and leave the chunk
 * cold; uploads read such a chunk back with O_DIRECT too. The proof is the kernel's own count of the
 * file's cached pages (fincore, util-linux): none after a direct write or read, some after a buffered one.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { seededBytes } from "../testing/seeded-random";
import { CacheBudget } from "./cache-budget";
import { DiskCache } from "./disk-cache";
import { MIN_DIRECT_BYTES } from "./direct-pieces";

const CHUNK = 256 * 1024;
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Bytes of the file the page cache holds now. */
function residentBytes(file: string): number {
  return Number(execFileSync("fincore", ["--bytes", "--noheadings", "--output", "RES", file], { encoding: "utf8" }).trim());
}

function setup(options: { directWrites?: boolean; lastChunk?: number } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "stratus-direct-writes-"));
  dirs.push(dir);
  const budget = new CacheBudget({ targetBytes: 64 * CHUNK, dirtyLimitBytes: 64 * CHUNK });
  const chunkLength = (index: number) => (index === 7 ? (options.lastChunk ?? CHUNK) : CHUNK);
  const cache = DiskCache.open({ dir, budget, chunkLength, chunkCount: 8, directWrites: options.directWrites ?? true }, () => true);
  const chunkFile = (index: number) => path.join(dir, "c", index.toString(16).padStart(16, "0"));
  const dirty = (index: number) => cache.readDirty(index, (length) => Buffer.alloc(length))!.data!;
  return { cache, chunkFile, dirty };
}

describe("direct writes", () => {
  it("a large page-aligned write into a new chunk bypasses the page cache, leaves it cold, and reads back whole", async () => {
    const { cache, chunkFile, dirty } = setup();
    const data = seededBytes(CHUNK, 1);
    cache.write(0, 0, CHUNK / 2, data, 0, false);
    expect(cache.get(0)!.cold).toBe(true);
    cache.write(0, CHUNK / 2, CHUNK / 2, data, CHUNK / 2, false); // into the cold chunk: direct too
    expect(residentBytes(chunkFile(0))).toBe(0);
    expect(dirty(0).equals(data)).toBe(true); // the upload's read, with O_DIRECT
    expect(residentBytes(chunkFile(0))).toBe(0);
    // A small write into the cold chunk is buffered (it may read its page first); the content stays whole.
    const patch = Buffer.from("patched!");
    cache.write(0, 5000, patch.length, patch, 0, false);
    patch.copy(data, 5000);
    expect(dirty(0).equals(data)).toBe(true);
    // The hot path warms it once, then reads through the page cache.
    await cache.warm(cache.get(0)!);
    expect(cache.get(0)!.cold).toBe(false);
    const out = Buffer.alloc(CHUNK);
    cache.readInto(cache.get(0)!, 0, out, 0, CHUNK);
    expect(out.equals(data)).toBe(true);
    expect(residentBytes(chunkFile(0))).toBe(CHUNK);
    cache.close(true);
  });

  it("small, unaligned, or warm-chunk writes stay buffered", () => {
    const { cache, chunkFile, dirty } = setup();
    const data = seededBytes(CHUNK, 2);
    cache.write(1, 0, MIN_DIRECT_BYTES - 4096, data, 0, false); // below the minimum
    expect(cache.get(1)!.cold).toBe(false);
    expect(residentBytes(chunkFile(1))).toBe(MIN_DIRECT_BYTES - 4096);
    cache.write(2, 512, MIN_DIRECT_BYTES * 2, data, 0, false); // not at a page offset
    expect(cache.get(2)!.cold).toBe(false);
    cache.write(1, MIN_DIRECT_BYTES, MIN_DIRECT_BYTES * 2, data, 0, false); // large, but the chunk is warm
    expect(residentBytes(chunkFile(1))).toBe(MIN_DIRECT_BYTES - 4096 + MIN_DIRECT_BYTES * 2);
    const expected = Buffer.alloc(CHUNK);
    data.copy(expected, 0, 0, MIN_DIRECT_BYTES - 4096);
    data.copy(expected, MIN_DIRECT_BYTES, 0, MIN_DIRECT_BYTES * 2);
    expect(dirty(1).equals(expected)).toBe(true);
    cache.close(true);
  });

  it("with directWrites off, every write is buffered", () => {
    const { cache, chunkFile } = setup({ directWrites: false });
    cache.write(3, 0, CHUNK, seededBytes(CHUNK, 3), 0, false);
    expect(cache.get(3)!.cold).toBe(false);
    expect(residentBytes(chunkFile(3))).toBe(CHUNK);
    cache.close(true);
  });

  it("a short last chunk (not whole pages) written direct in part is read back right", () => {
    const last = CHUNK - 1000;
    const { cache, dirty } = setup({ lastChunk: last });
    const data = seededBytes(last, 4);
    cache.write(7, 0, MIN_DIRECT_BYTES, data, 0, false); // direct: whole pages at 0
    expect(cache.get(7)!.cold).toBe(true);
    cache.write(7, MIN_DIRECT_BYTES, last - MIN_DIRECT_BYTES, data, MIN_DIRECT_BYTES, false); // the ragged rest, buffered
    expect(dirty(7).equals(data)).toBe(true);
    cache.close(true);
  });
});
