/**
 * Reads of one volume's cached chunks: synchronous positional reads on the entry's descriptor (kept
 * open in the budget's LRU), so a cached read completes before the caller's promise settles; a cold
 * chunk is warmed first (cache-warming.ts). A hole reads as zeros, and so does a short file's tail.
 */
import { readSync } from "node:fs";
import type { CacheBudget } from "./cache-budget";
import type { CacheEntries } from "./cache-entries";
import type { CacheEntry } from "./cache-entry";
import { fileError } from "./cache-files";
import type { DirectPieces } from "./direct-pieces";

export class CacheReads {
  constructor(
    private readonly entries: CacheEntries,
    private readonly budget: CacheBudget,
    /** O_DIRECT for whole reads of cold chunks. */
    private readonly directPieces: DirectPieces,
  ) {}

  /** Copies `length` bytes at `within` of a cached chunk into `target` (synchronous). */
  readInto(entry: CacheEntry, within: number, target: Uint8Array, targetOffset: number, length: number): void {
    if (entry.hole) {
      target.fill(0, targetOffset, targetOffset + length);
      return;
    }
    const fd = this.entries.fdOf(entry);
    if (!entry.dirty) this.budget.touchClean(entry);
    let done = 0;
    try {
      while (done < length) {
        const n = readSync(fd, target, targetOffset + done, length - done, within + done);
        if (n === 0) break;
        done += n;
      }
    } catch (error) {
      throw fileError(error, `reading cached chunk ${entry.index}`);
    }
    if (done < length) target.fill(0, targetOffset + done, targetOffset + length);
  }

  /**
   * A whole chunk into `data`: a cold one with O_DIRECT (its pages are not cached: reading it
   * buffered would fill new page-cache pages only to upload them), else through readInto.
   */
  readWhole(entry: CacheEntry, data: Buffer): void {
    if (entry.cold && !entry.hole) {
      try {
        if (this.directPieces.read(this.entries.fdOf(entry), data, 0, data.length, 0)) return;
      } catch (error) {
        throw fileError(error, `reading cached chunk ${entry.index}`);
      }
    }
    this.readInto(entry, 0, data, 0, data.length);
  }
}
