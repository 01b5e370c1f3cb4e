/** The budget on its own: eviction and the descriptor LRU reach chunks only through EvictableChunk. */
import { describe, expect, it } from "vitest";
import { CacheBudget, type EvictableChunk } from "./cache-budget";

function chunk(budget: CacheBudget, bytes: number, log: string[], name: string) {
  const self: EvictableChunk & { bytes: number } = {
    bytes,
    evict() {
      log.push(`evict ${name}`);
      budget.removeClean(self);
      budget.removeCached(self.bytes);
    },
    closeFile() {
      log.push(`close ${name}`);
      budget.fileClosed(self);
    },
  };
  budget.addCached(bytes);
  return self;
}

describe("CacheBudget", () => {
  it("evicts clean chunks least recently used first, down to the target", () => {
    const budget = new CacheBudget({ targetBytes: 200, dirtyLimitBytes: 100 });
    const log: string[] = [];
    const [a, b, c] = ["a", "b", "c"].map((name) => chunk(budget, 100, log, name));
    for (const entry of [a!, b!, c!]) budget.addClean(entry);
    budget.touchClean(a!); // b is now the oldest
    budget.evictToTarget();
    expect(log).toEqual(["evict b"]);
    expect(budget.cachedBytes).toBe(200);
    expect(budget.evictAllClean()).toBe(200);
    expect(log).toEqual(["evict b", "evict c", "evict a"]);
  });

  it("closes the least recently used descriptor past maxOpenFiles, never the one just opened", () => {
    const budget = new CacheBudget({ targetBytes: 1 << 20, dirtyLimitBytes: 100, maxOpenFiles: 4 });
    const log: string[] = [];
    const chunks = ["a", "b", "c", "d", "e"].map((name) => chunk(budget, 1, log, name));
    for (const entry of chunks.slice(0, 4)) budget.fileOpened(entry);
    budget.touchFile(chunks[0]!);
    budget.fileOpened(chunks[4]!);
    expect(log).toEqual(["close b"]);
    expect(budget.openFileCount).toBe(4);
  });

  it("evicts a whole clean dormant cache before live chunks, and never one holding dirty data", () => {
    const budget = new CacheBudget({ targetBytes: 150, dirtyLimitBytes: 100 });
    const log: string[] = [];
    const live = chunk(budget, 100, log, "live");
    budget.addClean(live);
    budget.addDormant("/nonexistent/stratus-pinned", 40, false);
    budget.addDormant("/nonexistent/stratus-idle", 40, true);
    expect(log).toEqual([]); // 180 > 150: the idle dormant cache went, the pinned one stays
    expect(budget.cachedBytes).toBe(140);
    expect(budget.pinnedDormant).toEqual(["/nonexistent/stratus-pinned"]);
  });

  it("wakes writers waiting for dirty room once dirty bytes fall below the limit, asking members to commit meanwhile", async () => {
    const budget = new CacheBudget({ targetBytes: 1000, dirtyLimitBytes: 100 });
    let requested = 0;
    budget.register({ requestCommit: () => requested++, dirtyBytes: 1 });
    budget.addDirty(100);
    expect(requested).toBeGreaterThan(0); // past half the limit
    let admitted = false;
    const waiting = budget.waitForDirtyRoom(() => {}).then(() => (admitted = true));
    await Promise.resolve();
    expect(admitted).toBe(false);
    budget.removeDirty(10);
    await waiting;
    expect(admitted).toBe(true);
  });

  it("keeps a volume that cannot commit within its own dirty cap, leaving the others room", async () => {
    const budget = new CacheBudget({ targetBytes: 1000, dirtyLimitBytes: 100, volumeDirtyLimitBytes: 60 });
    const stuck = { dirtyBytes: 0, commits: 0, requestCommit: () => stuck.commits++ };
    const other = { dirtyBytes: 0, commits: 0, requestCommit: () => other.commits++ };
    budget.register(stuck);
    budget.register(other);
    const dirty = (member: { dirtyBytes: number }, bytes: number) => {
      member.dirtyBytes += bytes;
      if (bytes > 0) budget.addDirty(bytes);
      else budget.removeDirty(-bytes);
    };
    dirty(stuck, 60);
    expect(budget.hasDirtyRoom(stuck.dirtyBytes)).toBe(false);
    expect(budget.hasDirtyRoom(other.dirtyBytes)).toBe(true);
    let admitted = false;
    const waiting = budget.waitForDirtyRoom(() => {}, stuck).then(() => (admitted = true));
    await Promise.resolve();
    expect(admitted).toBe(false);
    expect(stuck.commits).toBeGreaterThan(0); // only the volume at its cap is asked to commit
    expect(other.commits).toBe(0);

    dirty(other, 30); // the other volume still writes
    expect(budget.hasDirtyRoom(other.dirtyBytes)).toBe(true);
    dirty(other, -30);
    await Promise.resolve();
    expect(admitted).toBe(false); // the stuck volume's own bytes have not moved
    dirty(stuck, -1);
    await waiting;
    expect(admitted).toBe(true);
  });

  it("never lets one volume's cap exceed the gateway's dirty limit", () => {
    expect(new CacheBudget({ targetBytes: 1, dirtyLimitBytes: 100, volumeDirtyLimitBytes: 500 }).volumeDirtyLimitBytes).toBe(100);
    expect(new CacheBudget({ targetBytes: 1, dirtyLimitBytes: 100 }).volumeDirtyLimitBytes).toBe(100);
  });
});
