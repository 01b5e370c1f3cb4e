/**
 * The cache target covers every volume's cache on disk, not only the open ones: a closed
 * volume's cache counts as dormant, is evicted whole (oldest first) when room is needed, and one
 * holding uncommitted data is never evicted and is reported at start so the gateway commits it.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryObjectStore } from "../object-store/memory-store";
import { MemoryChunkIndex } from "../testing/memory-chunk-index";
import { seededBytes } from "../testing/seeded-random";
import { Volume } from "../volume/volume";
import { CacheBudget } from "./cache-budget";
import { registerDormantCaches } from "./disk-cache";

const CHUNK = 64 * 1024;
const roots: string[] = [];

function tempRoot(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "stratus-dormant-"));
  roots.push(root);
  return root;
}

afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

async function openVolume(volumeId: string, cacheDir: string, budget: CacheBudget, store: MemoryObjectStore, index: MemoryChunkIndex): Promise<Volume> {
  return Volume.open({
    volumeId,
    size: 16 * CHUNK,
    chunkSize: CHUNK,
    store,
    index,
    cacheDir,
    cacheBudget: budget,
    durability: "local",
    commitIntervalMs: 3_600_000,
  });
}

describe("dormant caches", () => {
  it("count against the target after their volume closes and are evicted whole, oldest first", async () => {
    const cacheDir = tempRoot();
    const store = new MemoryObjectStore();
    const budget = new CacheBudget({ targetBytes: 12 * CHUNK, dirtyLimitBytes: 64 * CHUNK });
    const indexes = { a: new MemoryChunkIndex(), b: new MemoryChunkIndex(), c: new MemoryChunkIndex() };
    const data = seededBytes(8 * CHUNK, 1);

    const a = await openVolume("vol_a", cacheDir, budget, store, indexes.a);
    await a.write(0, data);
    await a.close(); // committed, its 8 chunks stay on disk as a dormant cache
    expect(budget.cachedBytes).toBe(8 * CHUNK);
    expect(existsSync(path.join(cacheDir, "vol_a", "c"))).toBe(true);

    const b = await openVolume("vol_b", cacheDir, budget, store, indexes.b);
    await b.write(0, seededBytes(6 * CHUNK, 2));
    await b.close();
    // 8 + 6 chunks exceed the 12-chunk target: the older dormant cache (a) went whole.
    expect(existsSync(path.join(cacheDir, "vol_a"))).toBe(false);
    expect(budget.cachedBytes).toBe(6 * CHUNK);

    // Reopened cold, a reads its data back from the store; its cache counts again as it fills.
    const reopened = await openVolume("vol_a", cacheDir, budget, store, indexes.a);
    const back = Buffer.alloc(8 * CHUNK);
    await reopened.read(0, back);
    expect(back.equals(data)).toBe(true);
    expect(budget.cachedBytes).toBeLessThanOrEqual(12 * CHUNK);
    await reopened.close();
    expect(budget.cachedBytes).toBeLessThanOrEqual(12 * CHUNK);
  });

  it("never evicts a cache with uncommitted data, and reports it at the next start", async () => {
    const cacheDir = tempRoot();
    const store = new MemoryObjectStore();
    const index = new MemoryChunkIndex();
    const budget = new CacheBudget({ targetBytes: 2 * CHUNK, dirtyLimitBytes: 64 * CHUNK });
    const crashed = await openVolume("vol_dirty", cacheDir, budget, store, index);
    await crashed.write(0, seededBytes(4 * CHUNK, 3));
    await crashed.flush(); // durable locally, not committed
    crashed.abandon(); // the gateway dies here
    expect(existsSync(path.join(cacheDir, "vol_dirty", "c"))).toBe(true);

    const clean = await openVolume("vol_clean", cacheDir, budget, store, new MemoryChunkIndex());
    await clean.write(0, seededBytes(CHUNK, 4));
    await clean.close();

    // A new gateway finds both on disk: the dirty one is pinned and named, the clean one counted.
    const next = new CacheBudget({ targetBytes: 2 * CHUNK, dirtyLimitBytes: 64 * CHUNK });
    expect(registerDormantCaches(cacheDir, next)).toEqual(["vol_dirty"]);
    expect(existsSync(path.join(cacheDir, "vol_dirty", "c"))).toBe(true);
    expect(next.pinnedDormant).toEqual([path.join(cacheDir, "vol_dirty")]);

    // Committing it (as the gateway does at start) makes its data reach the store.
    const recovered = await openVolume("vol_dirty", cacheDir, next, store, index);
    await recovered.commit();
    await recovered.close();
    expect(index.snapshot().chunks.size).toBe(4);
    expect(next.pinnedDormant).toEqual([]);
  });
});
