import { describe, expect, it } from "vitest";
import { CacheEntry } from "./cache-entry";
import { UnsyncedFiles } from "./unsynced-files";

const owner = { evict() {}, closeFile() {} };

describe("UnsyncedFiles", () => {
  it("lists each written entry once per sync and gives a failed batch back", () => {
    const unsynced = new UnsyncedFiles();
    const [a, b] = [new CacheEntry(owner, 1), new CacheEntry(owner, 2)];
    expect(unsynced.clean).toBe(true);
    unsynced.mark(a);
    unsynced.mark(a);
    unsynced.mark(b);
    unsynced.markDirectory();
    const batch = unsynced.take();
    expect(batch.entries).toEqual([a, b]);
    expect(batch.directoryChanged).toBe(true);
    expect(a.unsynced).toBe(false);
    expect(unsynced.clean).toBe(true);
    unsynced.mark(b); // written again while the sync ran
    unsynced.restore(batch);
    expect(unsynced.take().entries).toEqual([b, a]);
  });
});
