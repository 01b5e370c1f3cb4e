/**
 * One volume's cache entries, their journal and their counts: every state change of an entry
 * (dirty hole, dirty, clean, dropped) is journalled here, in the order disk-cache.ts states, and
 * counted in this cache's and the budget's totals. Also the entries' file descriptors.
 */
import { openSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import type { CacheBudget } from "./cache-budget";
import { CacheEntry, type EntryOwner } from "./cache-entry";
import { chunkFileName, fileError } from "./cache-files";
import { KIND_CLEAN, KIND_DIRTY, KIND_DROP, KIND_LANDING, type CacheJournal, type ReplayedChunk } from "./cache-journal";
import type { ReplayedEntry } from "./cache-replay";
import { closePinned, datasyncPinned } from "./pinned-fds";
import type { SpareFiles } from "./spare-files";

export class CacheEntries implements EntryOwner {
  private readonly map = new Map<number, CacheEntry>();
  private versions = 0;
  /** Bytes of chunk files (clean + dirty) and of dirty chunks, for this volume. */
  cachedBytes = 0;
  dirtyBytes = 0;
  dirtyChunks = 0;

  constructor(
    private readonly chunkDir: string,
    private readonly journal: CacheJournal,
    private readonly budget: CacheBudget,
    private readonly spares: SpareFiles,
  ) {}

  get(index: number): CacheEntry | undefined {
    return this.map.get(index);
  }

  has(index: number): boolean {
    return this.map.has(index);
  }

  values(): IterableIterator<CacheEntry> {
    return this.map.values();
  }

  /** Makes `entry` the entry of its chunk (its counts are the caller's: see account). */
  set(entry: CacheEntry): void {
    this.map.set(entry.index, entry);
  }

  /** The next version: every change of a dirty chunk takes one. */
  nextVersion(): number {
    return ++this.versions;
  }

  /** An entry for a chunk file found at open, counted (and offered to the budget when clean). */
  addReplayed(replayed: ReplayedEntry): void {
    const entry = new CacheEntry(this, replayed.index);
    if (replayed.state === "clean") {
      entry.generation = replayed.generation;
      entry.bytes = replayed.bytes;
      // After a reboot (or a direct fill) its pages are on disk only: the first read warms them.
      entry.cold = true;
    } else {
      entry.dirty = true;
      entry.version = this.nextVersion();
      if (replayed.state === "dirty") entry.bytes = replayed.bytes;
      else entry.hole = true;
    }
    this.map.set(entry.index, entry);
    this.account(entry, +1);
    if (!entry.dirty) this.budget.addClean(entry);
  }

  /** A new dirty entry, journalled before anything else happens to its chunk. */
  newDirty(index: number): CacheEntry {
    this.journal.append(KIND_DIRTY, index);
    const entry = new CacheEntry(this, index);
    entry.dirty = true;
    return entry;
  }

  /**
   * Clean -> dirty: journalled before the file is touched. A dirty chunk journalled as landing is
   * journalled plain dirty again first: its content will no longer be the generation it was landing as.
   */
  makeDirty(entry: CacheEntry): void {
    if (entry.dirty) {
      if (entry.landing !== undefined) {
        this.journal.append(KIND_DIRTY, entry.index);
        entry.landing = undefined;
      }
      return;
    }
    this.journal.append(KIND_DIRTY, entry.index);
    this.budget.removeClean(entry);
    this.account(entry, -1);
    entry.dirty = true;
    this.account(entry, +1);
  }

  /**
   * A dirty chunk whose current content a commit names as `generation` is about to be sent to the
   * index: if the process dies before it hears back, the next open asks the index (cache-replay.ts).
   */
  markLanding(entry: CacheEntry, generation: number): void {
    this.journal.append(KIND_LANDING, entry.index, generation);
    entry.landing = generation;
  }

  /** Dirty -> clean at `generation`, once a commit landed it. */
  makeClean(entry: CacheEntry, generation: number): void {
    this.journal.append(KIND_CLEAN, entry.index, generation);
    this.account(entry, -1);
    entry.dirty = false;
    entry.landing = undefined;
    entry.generation = generation;
    this.account(entry, +1);
    this.budget.addClean(entry);
  }

  /** A written fill's file into place, then journalled clean; false: the fill is discarded. */
  placeFill(index: number, generation: number, from: string): boolean {
    const file = this.filePath(index);
    try {
      renameSync(from, file);
    } catch {
      return false;
    }
    try {
      this.journal.append(KIND_CLEAN, index, generation);
    } catch {
      rmSync(file, { force: true }); // no record names it: it must not stay under the chunk's name
      return false;
    }
    return true;
  }

  /** EntryOwner, for the budget: removes a clean chunk's file. */
  evict(entry: CacheEntry): void {
    if (entry.dirty) return;
    this.drop(entry);
  }

  /** The entry goes: its file is unlinked before the drop is journalled. */
  drop(entry: CacheEntry): void {
    this.closeFile(entry);
    if (!entry.hole) this.spares.retire(this.filePath(entry.index));
    this.budget.removeClean(entry);
    this.account(entry, -1);
    this.map.delete(entry.index);
    entry.bytes = 0;
    try {
      this.journal.append(KIND_DROP, entry.index);
    } catch {
      // The file is gone already: replay drops a record whose file is missing.
    }
  }

  /** EntryOwner, for the budget's fd LRU: closes the descriptor; the file stays. */
  closeFile(entry: CacheEntry): void {
    if (entry.fd < 0) return;
    closePinned(entry.fd); // a FLUSH's fdatasync may still run on it
    entry.fd = -1;
    this.budget.fileClosed(entry);
  }

  fdOf(entry: CacheEntry): number {
    if (entry.fd >= 0) {
      this.budget.touchFile(entry);
      return entry.fd;
    }
    try {
      entry.fd = openSync(this.filePath(entry.index), "r+");
    } catch (error) {
      throw fileError(error, `opening cached chunk ${entry.index}`);
    }
    this.budget.fileOpened(entry);
    return entry.fd;
  }

  filePath(index: number): string {
    return path.join(this.chunkDir, chunkFileName(index));
  }

  /** Adds (+1) or removes (-1) an entry's bytes from this cache's and the budget's counts. */
  account(entry: CacheEntry, sign: 1 | -1): void {
    const bytes = sign * entry.bytes;
    this.cachedBytes += bytes;
    this.budget.addCached(bytes);
    if (entry.dirty) {
      this.dirtyChunks += sign;
      this.dirtyBytes += bytes;
      if (sign > 0) this.budget.addDirty(bytes);
      else this.budget.removeDirty(-bytes);
    }
  }

  /** fdatasync of the journal through its open descriptor. */
  datasyncJournal(): Promise<void> {
    return datasyncPinned(this.journal.descriptor);
  }

  /** How many times the journal changed since it was opened (disk-cache.ts syncs it only when it moved). */
  get journalChanges(): number {
    return this.journal.changes;
  }

  /** Folds the journal into its snapshot of the entries. */
  compact(): void {
    this.journal.compact(this.journalState());
  }

  /** compact(), once the journal has grown well past the number of chunks. */
  compactIfLarge(): void {
    if (this.journal.recordCount < Math.max(4096, 2 * this.map.size)) return;
    this.compact();
  }

  /** Closes every file and the journal, and takes the entries out of the budget's counts. */
  close(): void {
    for (const entry of this.map.values()) {
      this.closeFile(entry);
      this.budget.removeClean(entry);
      this.account(entry, -1);
    }
    this.map.clear();
    this.journal.close();
  }

  private journalState(): Array<[number, ReplayedChunk]> {
    return [...this.map.values()].map((entry) => [
      entry.index,
      entry.dirty ? { dirty: true, landing: entry.landing } : { dirty: false, generation: entry.generation },
    ]);
  }
}
