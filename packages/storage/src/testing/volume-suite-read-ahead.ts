/** The Volume suite (volume-suite.ts): read-ahead, a shared cache, a stalled store, deleting objects. */
import { beforeAll, expect, it } from "vitest";
import { CacheBudget } from "../cache/cache-budget";
import type { ObjectStore } from "../object-store/object-store";
import { deleteVolumeObjects } from "../volume/delete-volume-objects";
import { seededBytes } from "./seeded-random";
import { CHUNK, KiB, type VolumeSuiteFixture } from "./volume-suite-fixture";
import { waitFor } from "./wait-for";

export function describeReadAheadCases(f: VolumeSuiteFixture): void {
  const { setup, reopenedCold, expectCached, keysOf, readAll } = f;
  let store: ObjectStore;
  beforeAll(() => {
    store = f.store;
  });

  it("reads ahead for sequential readers", async () => {
    const { reopened, reference } = await reopenedCold(setup(), 97, { readAheadChunks: 4 });
    for (let offset = 0; offset < 2 * CHUNK; offset += 16 * KiB) {
      expect((await readAll(reopened, offset, 16 * KiB)).equals(reference.subarray(offset, offset + 16 * KiB))).toBe(true);
    }
    // Chunks 2..5 were fetched ahead: they are served from the cache, synchronously, with no request.
    await waitFor(() => reopened.stats().cachedBytes >= 6 * CHUNK, "read-ahead");
    expectCached(reopened, [5, 4, 3, 2], reference);
    await reopened.close();
  });

  it("warms ahead for a sequential reader of cold cached chunks (after a restart), with no request", async () => {
    const s = setup();
    const volume = await s.open();
    const reference = seededBytes(volume.size, 96);
    await volume.write(0, reference);
    await volume.close();
    const reopened = await s.open({ readAheadChunks: 4 });
    for (let offset = 0; offset < 2 * CHUNK; offset += 16 * KiB) {
      expect((await readAll(reopened, offset, 16 * KiB)).equals(reference.subarray(offset, offset + 16 * KiB))).toBe(true);
    }
    // Chunks 2..5 were warmed ahead: served synchronously now, never read by the client before.
    // Up to four warm-ups run at once and finish in any order: wait for all of them.
    const probe = Buffer.alloc(4096);
    await waitFor(() => [2, 3, 4, 5].every((index) => reopened.readNow(index * CHUNK, probe)), "warm-ahead");
    for (const index of [2, 3, 4, 5]) {
      expect(reopened.readNow(index * CHUNK, probe)).toBe(true);
      expect(probe.equals(reference.subarray(index * CHUNK, index * CHUNK + 4096))).toBe(true);
    }
    expect(reopened.readNow(7 * CHUNK, probe)).toBe(false); // past the window: still cold
    expect(s.faulty.calls.get).toBe(0);
    await reopened.close();
  });

  it("reads ahead for each of two interleaved sequential readers", async () => {
    const { reopened, reference } = await reopenedCold(setup(), 98, { readAheadChunks: 2 });
    // Two copies' connections, or two programs: reads alternate between chunk 0 and chunk 8 on.
    for (let offset = 0; offset < CHUNK; offset += 16 * KiB) {
      for (const start of [0, 8 * CHUNK]) {
        const at = start + offset;
        expect((await readAll(reopened, at, 16 * KiB)).equals(reference.subarray(at, at + 16 * KiB))).toBe(true);
      }
    }
    await waitFor(() => reopened.stats().cachedBytes >= 6 * CHUNK, "read-ahead of both readers");
    expectCached(reopened, [10, 9, 2, 1], reference);
    await reopened.close();
  });

  it("keeps read-ahead within the download concurrency, and goes on as downloads finish", async () => {
    const suite = setup();
    const { faulty } = suite;
    const { reopened, reference } = await reopenedCold(suite, 99, { readAheadChunks: 8, uploadConcurrency: 3 });
    const release = faulty.hold("get");
    const targets = [0, 1, 2].map(() => Buffer.alloc(16 * KiB));
    const reads = targets.map((target, i) => reopened.read(i * 16 * KiB, target)); // sequential: read-ahead starts
    expect(faulty.heldCount("get")).toBe(3); // chunk 0 for the readers, then 2 ahead: not 9
    release();
    await Promise.all(reads);
    targets.forEach((target, i) => expect(target.equals(reference.subarray(i * 16 * KiB, (i + 1) * 16 * KiB))).toBe(true));
    // As the reader goes on, each of its reads tops read-ahead up again within the limit.
    for (let offset = 3 * 16 * KiB; offset < 6 * CHUNK; offset += 16 * KiB) {
      expect((await readAll(reopened, offset, 16 * KiB)).equals(reference.subarray(offset, offset + 16 * KiB))).toBe(true);
    }
    // Read-ahead's downloads finish in any order: wait for chunks 6 and 7 themselves, not for any 8 chunks.
    const probe = Buffer.alloc(CHUNK);
    await waitFor(
      () => reopened.stats().cachedBytes >= 8 * CHUNK && reopened.readNow(6 * CHUNK, probe) && reopened.readNow(7 * CHUNK, probe),
      "read-ahead past where the reader stopped",
    );
    expectCached(reopened, [7, 6], reference);
    await reopened.close();
  });

  it("reads back data 4x larger than a shared cache, staying within target + one dirty limit", async () => {
    const { open } = setup(32 * CHUNK);
    const budget = new CacheBudget({ targetBytes: 8 * CHUNK, dirtyLimitBytes: 4 * CHUNK });
    const bound = budget.targetBytes + budget.dirtyLimitBytes + CHUNK; // + one admitted write
    let peak = 0;
    const volume = await open({ cacheBudget: budget, durability: "local", commitIntervalMs: 3_600_000 });
    const reference = seededBytes(volume.size, 98);
    for (let offset = 0; offset < volume.size; offset += CHUNK / 2) {
      await volume.write(offset, reference.subarray(offset, offset + CHUNK / 2));
      peak = Math.max(peak, budget.cachedBytes);
    }
    await volume.flush();
    for (let offset = 0; offset < volume.size; offset += 3 * CHUNK) {
      const length = Math.min(3 * CHUNK, volume.size - offset);
      expect((await readAll(volume, offset, length)).equals(reference.subarray(offset, offset + length))).toBe(true);
      peak = Math.max(peak, budget.cachedBytes);
    }
    expect(peak).toBeLessThanOrEqual(bound);
    await volume.close();
    // Closed, its clean files stay as a dormant cache: still counted, within the target, not pinned.
    expect(budget.cachedBytes).toBeGreaterThan(0);
    expect(budget.cachedBytes).toBeLessThanOrEqual(budget.targetBytes);
    expect(budget.pinnedDormant).toEqual([]);
    expect(budget.openFileCount).toBe(0);
  });

  it("holds writes (never fails them) while the store stalls, and drains when it recovers", async () => {
    const { open, faulty, freshCacheDir } = setup();
    const volume = await open({ durability: "local", dirtyLimitBytes: 2 * CHUNK, commitIntervalMs: 3_600_000 });
    const release = faulty.hold("put");
    const reference = seededBytes(volume.size, 99);
    const settled: Array<"ok" | "failed"> = [];
    const writes = Array.from({ length: 16 }, (_, chunk) =>
      volume.write(chunk * CHUNK, reference.subarray(chunk * CHUNK, (chunk + 1) * CHUNK)).then(
        () => void settled.push("ok"),
        () => void settled.push("failed"),
      ),
    );
    await waitFor(() => faulty.heldCount("put") > 0, "uploads to stall");
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled.length).toBeLessThan(16); // some wait for room
    expect(settled).not.toContain("failed");
    release();
    await Promise.all(writes);
    expect(settled.every((s) => s === "ok")).toBe(true);
    await volume.close();
    const reopened = await open({ cacheDir: freshCacheDir() });
    expect((await readAll(reopened)).equals(reference)).toBe(true);
    await reopened.close();
  });

  it("deleteVolumeObjects removes every object of one volume and no other", async () => {
    const a = setup();
    const b = setup();
    for (const s of [a, b]) {
      const volume = await s.open();
      await volume.write(0, seededBytes(6 * CHUNK, 81));
      await volume.close();
    }
    expect(await deleteVolumeObjects(store, a.volumeId)).toBe(6);
    expect(await keysOf(a.volumeId)).toEqual([]);
    expect((await keysOf(b.volumeId)).length).toBe(6);
    expect(await deleteVolumeObjects(store, a.volumeId)).toBe(0);
  });
}
