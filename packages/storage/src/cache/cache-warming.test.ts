import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CacheEntry } from "./cache-entry";
import { CacheWarming } from "./cache-warming";

const dirs: string[] = [];
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const owner = { evict() {}, closeFile() {} };

describe("CacheWarming", () => {
  it("reads each cold entry once, shared by concurrent callers, and leaves it warm", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "stratus-warm-"));
    dirs.push(dir);
    const entries = Array.from({ length: 6 }, (_, index) => {
      const file = path.join(dir, String(index));
      writeFileSync(file, Buffer.alloc(3 * 1024 * 1024, index));
      const entry = new CacheEntry(owner, index);
      entry.cold = true;
      entry.fd = openSync(file, "r");
      fds.push(entry.fd);
      return entry;
    });
    const opened: number[] = [];
    const warming = new CacheWarming({
      isCurrent: () => true,
      fdOf: (entry) => {
        opened.push(entry.index);
        return entry.fd;
      },
      chunkLength: () => 3 * 1024 * 1024,
    });
    const first = warming.warm(entries[0]!);
    expect(warming.warm(entries[0]!)).toBe(first);
    await Promise.all([first, ...entries.slice(1).map((entry) => warming.warm(entry))]);
    expect(entries.every((entry) => !entry.cold)).toBe(true);
    expect(opened.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    await warming.warm(entries[0]!); // warm already: nothing to read
    expect(opened.length).toBe(6);
  });

  it("never rejects: an entry evicted meanwhile is only marked warm", async () => {
    const entry = new CacheEntry(owner, 0);
    entry.cold = true;
    const warming = new CacheWarming({
      isCurrent: () => true,
      fdOf: () => {
        throw new Error("evicted");
      },
      chunkLength: () => 4096,
    });
    await warming.warm(entry);
    expect(entry.cold).toBe(false);
  });
});
