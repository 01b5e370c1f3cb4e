/**
 * One volume's persistent chunk cache: `<dir>/c/<index 16 hex>` files and a journal of their state
 * (clean generation | dirty). It knows files and journal order, not stores or commits. Its parts:
 * replay at open (cache-replay.ts), fills of fetched chunks (cache-fills.ts), warming of cold
 * chunks (cache-warming.ts), frozen-chunk preservation for commits (frozen-content.ts), spare
 * files (spare-files.ts), and the shared budget that evicts and bounds descriptors (cache-budget.ts).
 *
 * Ordering rules that make kill -9 safe:
 * - a chunk is journalled dirty BEFORE its file is first modified; a FLUSH fsyncs the files
 *   written since the last one, the directory when files came or went, then the journal;
 * - a fetched chunk's file is written in full BEFORE it is journalled (a torn fill is a stray
 *   file, deleted on open); an evicted file is unlinked before its drop is journalled.
 * Hot path: reads and writes of cached chunks are positional readSync/writeSync on an fd kept open
 * in the budget's LRU. A cold chunk (pages maybe on disk only) is warmed first. A full disk
 * (ENOSPC) first evicts every clean chunk and tries again, then fails the write with
 * StorageError("ENOSPC"): the journal and every other chunk stay as they were.
 * Longer than our ~400-line aim on purpose: every state change of an entry (hole, dirty, clean,
 * dropped) and its journal order is in this one class, so the crash rules above read in one place.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { StorageError, isStorageError } from "../errors";
import type { Clock } from "../util/clock";
import type { CacheBudget } from "./cache-budget";
import { CacheEntry, type EntryOwner, type FrozenChunk } from "./cache-entry";
import { chunkFileName, fileError, fsyncFile, isNoSpace, noSpace, writeFully } from "./cache-files";
import { CacheFills } from "./cache-fills";
import { CacheJournal, KIND_CLEAN, KIND_DIRTY, KIND_DROP, type ReplayedChunk } from "./cache-journal";
import { replayChunkFiles } from "./cache-replay";
import { CacheWarming } from "./cache-warming";
import { DirectPieces } from "./direct-pieces";
import type { FillWriter } from "./fill-writer";
import { FrozenContent } from "./frozen-content";
import { discardIfRebooted, kernelBootId, readRebootMarker, removeRebootMarker, writeRebootMarker } from "./reboot-marker";
import { SpareFiles } from "./spare-files";
import { UnsyncedFiles } from "./unsynced-files";

export { registerDormantCaches } from "./dormant-caches";

export interface DiskCacheOptions {
  /** This volume's cache directory (created if missing). */
  dir: string;
  budget: CacheBudget;
  /** Bytes of chunk `index` (the last chunk may be short). */
  chunkLength(index: number): number;
  chunkCount: number;
  /** Memory for frozen content before it goes to side files (default 64 MiB; tests lower it). */
  maxFrozenMemoryBytes?: number;
  /** Bytes of fetched chunks held back or being written into the cache (default 96 MiB, at least one chunk). */
  maxFillingBytes?: number;
  /** Writes a fill's file off the event loop (default: fs.write in the thread pool; tests hold it). */
  fillWriter?: FillWriter;
  /** Page-aligned fills are written with O_DIRECT after a delay (default true where the file system takes O_DIRECT). See cache-fills.ts. */
  directFills?: boolean;
  /**
   * Large page-aligned writes into a new or cold chunk, and an upload's read of a cold chunk, use
   * O_DIRECT where the file system takes it (default false). It suits a volume whose writes wait for
   * the bucket anyway (cloud durability), not one whose writes should be read back warm. See direct-pieces.ts.
   */
  directWrites?: boolean;
  /** Bytes of direct fills held back before the oldest is written (default 32 MiB). */
  fillDelayBytes?: number;
  /**
   * The owner syncs only at close, not at every flush (cloud durability): the cache is then kept
   * under a reboot marker (see reboot-marker.ts) and starts empty after a reboot that found it
   * unsynced. Ignored where the boot cannot be told (`syncsLazily` then says false).
   */
  lazySync?: boolean;
  /** This boot's id (default: the kernel's; null: unknown). Tests set it to play a reboot. */
  bootId?: string | null;
  /** Times the hold of direct fills (default: the system clock). */
  clock?: Clock;
}

/** A piece of one chunk to write: `length` bytes at `within`, from `source` at `sourceOffset` (zeros when null). */
export interface ChunkWrite {
  readonly index: number;
  readonly within: number;
  readonly length: number;
  readonly source: Buffer | null;
  readonly sourceOffset: number;
}

const ZEROS = Buffer.alloc(64 * 1024);

export class DiskCache implements EntryOwner {
  readonly dir: string;
  readonly budget: CacheBudget;
  private readonly chunkDir: string;
  private readonly journal: CacheJournal;
  private readonly chunkLength: (index: number) => number;
  private readonly entries = new Map<number, CacheEntry>();
  private readonly unsynced = new UnsyncedFiles();
  private readonly spares: SpareFiles;
  private readonly fills: CacheFills;
  private readonly warming: CacheWarming;
  private readonly frozen: FrozenContent;
  /** O_DIRECT for large writes into cold chunks and for uploads' reads of them. */
  private readonly directPieces: DirectPieces;
  private versions = 0;
  private closed = false;
  /** Flushes do not sync this cache; its reboot marker is in place. */
  readonly syncsLazily: boolean;
  /** Opened after a reboot that found it unsynced: it started empty. */
  discardedAfterReboot = false;
  /** A marker left by a lazy owner in this boot: the next sync covers every file, then removes it. */
  private rebootMarkerToClear = false;
  /** Bytes of chunk files (clean + dirty) and of dirty chunks, for this volume. */
  cachedBytes = 0;
  dirtyBytes = 0;
  private dirtyChunks = 0;

  private constructor(options: DiskCacheOptions, journal: CacheJournal, syncsLazily: boolean) {
    this.dir = options.dir;
    this.syncsLazily = syncsLazily;
    this.budget = options.budget;
    this.chunkDir = path.join(options.dir, "c");
    this.chunkLength = options.chunkLength;
    this.journal = journal;
    this.directPieces = new DirectPieces(options.directWrites === true);
    this.spares = new SpareFiles(path.join(options.dir, "spare"));
    this.fills = new CacheFills({
      budget: options.budget,
      spares: this.spares,
      maxFillingBytes: options.maxFillingBytes,
      fillWriter: options.fillWriter,
      directFills: options.directFills,
      fillDelayBytes: options.fillDelayBytes,
      clock: options.clock,
      host: {
        hasEntry: (index) => this.entries.has(index),
        placeFill: (index, generation, from) => this.placeFill(index, generation, from),
        enterFill: (landed) => this.enterFill(landed),
      },
    });
    this.warming = new CacheWarming({
      isCurrent: (entry) => this.entries.get(entry.index) === entry,
      fdOf: (entry) => this.fdOf(entry),
      chunkLength: this.chunkLength,
    });
    this.frozen = new FrozenContent(
      path.join(options.dir, "frozen"),
      {
        chunkLength: this.chunkLength,
        filePath: (index) => this.filePath(index),
        readInto: (entry, within, target, targetOffset, length) => this.readInto(entry, within, target, targetOffset, length),
        readWhole: (entry, data) => this.readWhole(entry, data),
      },
      options.maxFrozenMemoryBytes,
    );
  }

  /**
   * Replays the journal and rebuilds the entries. `keepClean(index, generation)` says whether a
   * clean chunk still matches the index (else its file is deleted). Dirty chunks all survive:
   * `dirtyIndexes()` lists them for the caller to re-queue.
   */
  static open(options: DiskCacheOptions, keepClean: (index: number, generation: number) => boolean): DiskCache {
    // Counted as dormant while closed; from here on its entries count themselves.
    options.budget.removeDormant(options.dir);
    const bootId = options.bootId === undefined ? kernelBootId() : (options.bootId ?? undefined);
    mkdirSync(options.dir, { recursive: true });
    const discarded = discardIfRebooted(options.dir, bootId);
    const chunkDir = path.join(options.dir, "c");
    const frozenDir = path.join(options.dir, "frozen");
    mkdirSync(chunkDir, { recursive: true });
    rmSync(frozenDir, { recursive: true, force: true }); // a dead commit's copies: never needed again
    mkdirSync(frozenDir, { recursive: true });
    mkdirSync(path.join(options.dir, "spare"), { recursive: true });
    const { journal, chunks } = CacheJournal.open(options.dir);
    const cache = new DiskCache(options, journal, options.lazySync === true && bootId !== undefined);
    cache.discardedAfterReboot = discarded;
    for (const replayed of replayChunkFiles({ chunkDir, chunks, chunkCount: options.chunkCount, chunkLength: options.chunkLength, keepClean })) {
      const entry = new CacheEntry(cache, replayed.index);
      if (replayed.state === "clean") {
        entry.generation = replayed.generation;
        entry.bytes = replayed.bytes;
        // After a reboot (or a direct fill) its pages are on disk only: the first read warms them.
        entry.cold = true;
      } else {
        entry.dirty = true;
        entry.version = ++cache.versions;
        if (replayed.state === "dirty") entry.bytes = replayed.bytes;
        else entry.hole = true;
      }
      cache.entries.set(entry.index, entry);
      cache.account(entry, +1);
      if (!entry.dirty) options.budget.addClean(entry);
    }
    journal.compact(cache.journalState());
    const marked = readRebootMarker(options.dir); // this boot's, if any: discardIfRebooted took another's
    if (marked !== undefined) {
      // A lazy owner that did not close cleanly wrote here in this boot: the next sync covers all it
      // may have left unsynced (for a lazy owner, at close; else at the first flush, which then drops the marker).
      for (const entry of cache.entries.values()) if (!entry.hole) cache.unsynced.mark(entry);
      cache.unsynced.markDirectory();
      cache.rebootMarkerToClear = !cache.syncsLazily;
    } else if (cache.syncsLazily) {
      writeRebootMarker(options.dir, bootId!);
    }
    options.budget.evictToTarget();
    return cache;
  }

  /** Chunk files written since the last sync (or, after a crash of a lazy owner, since its last one). */
  get unsyncedCount(): number {
    return this.unsynced.count;
  }

  get(index: number): CacheEntry | undefined {
    return this.entries.get(index);
  }

  dirtyIndexes(): number[] {
    const indexes: number[] = [];
    for (const entry of this.entries.values()) if (entry.dirty) indexes.push(entry.index);
    return indexes;
  }

  /** Dirty chunks (data or holes) of this volume. */
  get dirtyCount(): number {
    return this.dirtyChunks;
  }

  // ---- reads -----------------------------------------------------------------------------------

  /** Copies `length` bytes at `within` of a cached chunk into `target` (synchronous). */
  readInto(entry: CacheEntry, within: number, target: Uint8Array, targetOffset: number, length: number): void {
    if (entry.hole) {
      target.fill(0, targetOffset, targetOffset + length);
      return;
    }
    const fd = this.fdOf(entry);
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
  private readWhole(entry: CacheEntry, data: Buffer): void {
    if (entry.cold && !entry.hole) {
      try {
        if (this.directPieces.read(this.fdOf(entry), data, 0, data.length, 0)) return;
      } catch (error) {
        throw fileError(error, `reading cached chunk ${entry.index}`);
      }
    }
    this.readInto(entry, 0, data, 0, data.length);
  }

  /**
   * A dirty chunk's current content and version, read synchronously (so atomically with respect to
   * writes), for an upload ahead of its commit; null data for a dirty hole, undefined when the chunk
   * is not dirty (any more).
   */
  readDirty(index: number, allocate: (length: number) => Buffer): { data: Buffer | null; version: number } | undefined {
    this.assertOpen();
    const entry = this.entries.get(index);
    if (entry === undefined || !entry.dirty) return undefined;
    if (entry.hole) return { data: null, version: entry.version };
    const data = allocate(this.chunkLength(index));
    this.readWhole(entry, data);
    return { data, version: entry.version };
  }

  /** Resolves once a cold entry's pages are read in (see cache-warming.ts). */
  warm(entry: CacheEntry): Promise<void> {
    return this.warming.warm(entry);
  }

  // ---- fills (cache-fills.ts) ------------------------------------------------------------------

  /** Starts caching a fetched clean chunk in the background; false when it did not start (see CacheFills.start). */
  fillClean(index: number, generation: number, data: Buffer): boolean {
    return this.fills.start(index, generation, data);
  }

  /** The content of a chunk whose fill is in flight (always its current content), if any. */
  filling(index: number): Buffer | undefined {
    return this.fills.filling(index);
  }

  /** Resolves once the fill of `index` (if any) has landed or been discarded; a held-back one starts now. */
  fillSettled(index: number): Promise<void> {
    return this.fills.settled(index);
  }

  /** Starts the fills held back, then resolves once every fill is done with its file, even those close abandoned. */
  fillsSettled(): Promise<void> {
    return this.fills.allSettled();
  }

  /** Writes every fill still held back (a closing volume keeps them for its next open). */
  startHeldFills(): void {
    this.fills.startHeld();
  }

  /** A written fill's file into place, then journalled clean; false: the fill is discarded. */
  private placeFill(index: number, generation: number, from: string): boolean {
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

  /** The entry of a placed fill (`cold`: written with O_DIRECT). */
  private enterFill(landed: { index: number; generation: number; fd: number; bytes: number; cold: boolean }): void {
    const entry = new CacheEntry(this, landed.index);
    entry.generation = landed.generation;
    entry.bytes = landed.bytes;
    entry.cold = landed.cold;
    entry.fd = landed.fd;
    this.entries.set(landed.index, entry);
    // A lazy cache's clean close syncs every file before it drops its reboot marker: this one too.
    if (this.syncsLazily) this.unsynced.mark(entry);
    this.budget.fileOpened(entry);
    this.account(entry, +1);
    this.budget.addClean(entry);
    this.budget.evictToTarget();
  }

  // ---- writes ----------------------------------------------------------------------------------

  /**
   * True when a write of `length` bytes at `within` of chunk `index` needs the chunk's current
   * content fetched first: part of a `committed` chunk that is not cached.
   */
  needsContent(index: number, within: number, length: number, committed: boolean): boolean {
    return committed && !this.entries.has(index) && !(within === 0 && length === this.chunkLength(index));
  }

  /**
   * Writes `source` (zeros when null) over `length` bytes at `within` of chunk `index`.
   * Returns false, changing nothing, when needsContent() says the content must be fetched first.
   */
  write(index: number, within: number, length: number, source: Buffer | null, sourceOffset: number, committed: boolean): boolean {
    return this.writeChunk({ index, within, length, source, sourceOffset }, committed);
  }

  /** write() for a piece named field by field. */
  writeChunk(piece: ChunkWrite, committed: boolean): boolean {
    this.assertOpen();
    if (this.needsContent(piece.index, piece.within, piece.length, committed)) return false;
    this.withSpace(() => this.applyWrite(piece));
    return true;
  }

  /** Makes a fetched committed chunk dirty with its content (the cache could not keep it clean). */
  adoptFetched(index: number, data: Buffer): void {
    this.assertOpen();
    if (this.entries.has(index)) return;
    this.fills.cancel(index); // the chunk is about to change: a clean fill landing later would undo it
    this.withSpace(() => {
      const file = this.filePath(index);
      const fd = this.spares.create(file, (created) => writeFully(created, data, 0, data.length, 0));
      try {
        this.journal.append(KIND_DIRTY, index);
      } catch (error) {
        closeSync(fd);
        rmSync(file, { force: true });
        throw error;
      }
      const entry = new CacheEntry(this, index);
      entry.dirty = true;
      entry.bytes = data.length;
      entry.fd = fd;
      entry.version = ++this.versions;
      this.entries.set(index, entry);
      this.budget.fileOpened(entry);
      this.unsynced.markDirectory();
      this.unsynced.mark(entry);
      this.account(entry, +1);
      if (this.budget.cachedBytes > this.budget.targetBytes) this.budget.evictToTarget();
    });
  }

  /** The whole chunk becomes a hole: no file now, no object after the next commit. */
  punchHole(index: number, committed: boolean): void {
    this.assertOpen();
    let entry = this.entries.get(index);
    if (entry === undefined) {
      if (!committed) return; // already a hole everywhere
      entry = this.newDirtyHole(index);
    } else if (!entry.hole) {
      this.makeDirty(entry);
      this.closeFile(entry);
      // Frozen content not read by its upload yet: keep it aside instead of deleting it.
      if (entry.frozen !== undefined) this.frozen.moveAside(entry);
      else this.spares.retire(this.filePath(index));
      this.account(entry, -1);
      entry.hole = true;
      entry.bytes = 0;
      this.account(entry, +1);
      this.unsynced.markDirectory();
    }
    entry.version = ++this.versions;
  }

  /** A chunk with no entry becomes a dirty hole, journalled before anything else happens to it. */
  private newDirtyHole(index: number): CacheEntry {
    this.fills.cancel(index);
    this.journal.append(KIND_DIRTY, index);
    const entry = new CacheEntry(this, index);
    entry.dirty = true;
    entry.hole = true;
    this.entries.set(index, entry);
    this.account(entry, +1);
    return entry;
  }

  private applyWrite(piece: ChunkWrite): void {
    const { index, within, length, source, sourceOffset } = piece;
    let entry = this.entries.get(index);
    if (entry === undefined) {
      if (source === null) return; // zeros into a chunk that is a hole everywhere
      entry = this.newDirtyHole(index);
      entry.version = ++this.versions;
    }
    if (entry.hole) {
      if (source === null) return; // zeros into a hole
      this.makeDirty(entry);
      // The piece is written before the file takes the chunk's name: a refused write leaves the hole.
      let direct = false;
      this.materialize(entry, (fd) => (direct = this.writePiece(fd, piece, true)));
      entry.cold = direct;
    } else if (source !== null && entry.frozen !== undefined && within === 0 && length === this.chunkLength(index)) {
      this.makeDirty(entry);
      this.replaceFrozen(entry, source, sourceOffset);
    } else {
      this.makeDirty(entry);
      this.frozen.preserve(entry, within, length);
      const fd = this.fdOf(entry);
      if (source === null) {
        for (let done = 0; done < length; ) {
          const n = Math.min(ZEROS.length, length - done);
          writeFully(fd, ZEROS, 0, n, within + done);
          done += n;
        }
      } else {
        this.writePiece(fd, piece, entry.cold);
      }
    }
    entry.version = ++this.versions;
    this.unsynced.mark(entry);
  }

  /**
   * Writes a piece into a chunk's file open as `fd`: with O_DIRECT when the file's pages are not
   * cached (`cold`: a new file, or a cold chunk) and the piece is large and page-aligned, else
   * buffered. True: it went direct (the file stays cold).
   */
  private writePiece(fd: number, piece: ChunkWrite, cold: boolean): boolean {
    const { within, length, sourceOffset } = piece;
    const source = piece.source!;
    if (cold && this.directPieces.takes(within, length) && this.directPieces.write(fd, source, sourceOffset, length, within)) return true;
    writeFully(fd, source, sourceOffset, length, within);
    return false;
  }

  /** Clean -> dirty: journalled before the file is touched. */
  private makeDirty(entry: CacheEntry): void {
    if (entry.dirty) return;
    this.journal.append(KIND_DIRTY, entry.index);
    this.budget.removeClean(entry);
    this.account(entry, -1);
    entry.dirty = true;
    this.account(entry, +1);
  }

  /** A hole gets a (sparse, all-zero) file of the chunk's length, `fill` applied before it is named. */
  private materialize(entry: CacheEntry, fill: (fd: number) => void): void {
    const length = this.chunkLength(entry.index);
    const fd = this.spares.create(this.filePath(entry.index), (created) => {
      ftruncateSync(created, length);
      fill(created);
    });
    this.account(entry, -1);
    entry.hole = false;
    entry.bytes = length;
    entry.fd = fd;
    this.account(entry, +1);
    this.budget.fileOpened(entry);
    this.unsynced.markDirectory();
    if (this.budget.cachedBytes > this.budget.targetBytes) this.budget.evictToTarget();
  }

  /**
   * A whole-chunk write to a frozen chunk: the frozen content keeps the old file (a hard link
   * aside) and the new content becomes a new file renamed over the chunk's name. At every point
   * of a crash the chunk's name holds either the old or the new content.
   */
  private replaceFrozen(entry: CacheEntry, source: Buffer, sourceOffset: number): void {
    const length = this.chunkLength(entry.index);
    const undoLink = this.frozen.linkAside(entry);
    this.closeFile(entry);
    try {
      entry.fd = this.spares.create(this.filePath(entry.index), (created) => {
        ftruncateSync(created, length);
        writeFully(created, source, sourceOffset, length, 0);
      });
    } catch (error) {
      undoLink();
      throw error;
    }
    this.budget.fileOpened(entry);
    this.unsynced.markDirectory();
  }

  /** Runs a disk change; on ENOSPC evicts every clean chunk and tries once more. */
  private withSpace(change: () => void): void {
    try {
      change();
      return;
    } catch (error) {
      if (!isNoSpace(error)) throw fileError(error, `writing the cache of ${this.dir}`);
      if (this.budget.evictAllClean() === 0) throw noSpace(error, this.dir);
    }
    try {
      change();
    } catch (error) {
      if (isNoSpace(error)) throw noSpace(error, this.dir);
      throw fileError(error, `writing the cache of ${this.dir}`);
    }
  }

  // ---- commits (frozen-content.ts) ------------------------------------------------------------

  /** Freezes every dirty chunk (see freeze). */
  freezeDirty(): FrozenChunk[] {
    const frozen: FrozenChunk[] = [];
    for (const entry of this.entries.values()) if (entry.dirty) frozen.push(this.frozen.freeze(entry));
    return frozen;
  }

  /** Captures a dirty chunk's state for a commit; writes after this copy the content aside first. */
  freeze(entry: CacheEntry): FrozenChunk {
    return this.frozen.freeze(entry);
  }

  /**
   * The frozen content (read synchronously, so atomically with respect to writes), or null for a
   * hole. `allocate` gives the buffer a chunk's file is read into; content kept aside comes as is.
   */
  readFrozen(frozen: FrozenChunk, allocate: (length: number) => Buffer = Buffer.allocUnsafe): Buffer | null {
    this.assertOpen();
    return this.frozen.read(frozen, allocate);
  }

  /**
   * After a commit landed: the chunk is clean at `generation` (or dropped when `generation` is
   * undefined: it has no object) unless it was written again since the freeze.
   */
  settle(frozen: FrozenChunk, generation: number | undefined): void {
    this.release(frozen);
    if (this.closed) return;
    const entry = this.entries.get(frozen.index);
    if (entry !== frozen.entry || entry.version !== frozen.version || !entry.dirty) return;
    if (generation === undefined || entry.hole) {
      this.drop(entry);
      return;
    }
    this.journal.append(KIND_CLEAN, entry.index, generation);
    this.account(entry, -1);
    entry.dirty = false;
    entry.generation = generation;
    this.account(entry, +1);
    this.budget.addClean(entry);
  }

  /** Forgets a freeze (its commit failed or is done): no more copying aside, side copy deleted. */
  release(frozen: FrozenChunk): void {
    this.frozen.release(frozen, this.closed);
  }

  get pendingFrozen(): number {
    return this.frozen.pending;
  }

  /** Folds the journal into the snapshot once it has grown well past the number of chunks. */
  compactIfLarge(): void {
    if (this.closed || this.journal.recordCount < Math.max(4096, 2 * this.entries.size)) return;
    this.journal.compact(this.journalState());
  }

  // ---- FLUSH ---------------------------------------------------------------------------------

  /**
   * Makes every write so far durable on the local disk: fsyncs the chunk files written since the
   * last call (through their own descriptors, so the fd LRU may close ours meanwhile), the chunk
   * directory when files came or went, then the journal.
   */
  async sync(): Promise<void> {
    this.assertOpen();
    const batch = this.unsynced.take();
    const files = batch.entries.filter((entry) => !entry.hole).map((entry) => this.filePath(entry.index));
    try {
      await Promise.all(files.map((file) => fsyncFile(file)));
      if (batch.directoryChanged) await fsyncFile(this.chunkDir);
      if (this.closed) throw new StorageError("ESHUTDOWN", `cache ${this.dir} is closed`);
      await fsyncFile(path.join(this.dir, "journal"));
      if (this.rebootMarkerToClear && !this.closed) {
        removeRebootMarker(this.dir);
        this.rebootMarkerToClear = false;
      }
    } catch (error) {
      this.unsynced.restore(batch); // try again next time
      if (isStorageError(error)) throw error;
      throw fileError(error, `syncing the cache of ${this.dir}`);
    }
  }

  // ---- eviction, files -------------------------------------------------------------------------

  /** EntryOwner, for the budget: removes a clean chunk's file. */
  evict(entry: CacheEntry): void {
    if (entry.dirty) return;
    this.drop(entry);
  }

  private drop(entry: CacheEntry): void {
    this.closeFile(entry);
    if (!entry.hole) this.spares.retire(this.filePath(entry.index));
    this.budget.removeClean(entry);
    this.account(entry, -1);
    this.entries.delete(entry.index);
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
    closeSync(entry.fd);
    entry.fd = -1;
    this.budget.fileClosed(entry);
  }

  private fdOf(entry: CacheEntry): number {
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

  /** Adds (+1) or removes (-1) an entry's bytes from this cache's and the budget's counts. */
  private account(entry: CacheEntry, sign: 1 | -1): void {
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

  private journalState(): Array<[number, ReplayedChunk]> {
    return [...this.entries.values()].map((entry) => [entry.index, entry.dirty ? { dirty: true } : { dirty: false, generation: entry.generation }]);
  }

  private filePath(index: number): string {
    return path.join(this.chunkDir, chunkFileName(index));
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageError("ESHUTDOWN", `cache ${this.dir} is closed`);
  }

  /**
   * Closes files and the journal and leaves the budget. With `compact` (a clean close) the
   * journal is folded into the snapshot first; without it (abandon) nothing more is written.
   */
  close(compact: boolean): void {
    if (this.closed) return;
    if (compact) this.journal.compact(this.journalState());
    // Synced to the last file (the owner's close synced; nothing came since): a reboot may keep it.
    if (compact && this.syncsLazily && this.unsynced.clean) removeRebootMarker(this.dir);
    this.closed = true;
    this.fills.close();
    // The files stay for the next open; until then the budget counts them as a dormant cache,
    // evictable whole unless it holds uncommitted data.
    const onDisk = this.cachedBytes;
    const evictable = this.dirtyChunks === 0;
    for (const entry of this.entries.values()) {
      this.closeFile(entry);
      this.budget.removeClean(entry);
      this.account(entry, -1);
    }
    this.entries.clear();
    this.journal.close();
    this.budget.addDormant(this.dir, onDisk, evictable);
  }
}
