/**
 * One volume's chunk cache: `<dir>/c/<index 16 hex>` files and a journal of their state. It wires
 * its parts (docs/architecture.md) and states the rules they keep, which make kill -9 safe:
 * - a chunk is journalled dirty BEFORE its file is first modified; a FLUSH syncs (fdatasync) the
 *   files written since the last one, the directory when files came or went, and the journal when it
 *   changed, all at once: the FLUSH is answered when every one is on disk;
 * - a fetched chunk's file is written in full BEFORE it is journalled clean (a torn fill is a stray
 *   file, deleted on open); an evicted file is unlinked before its drop is journalled.
 */
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { StorageError, isStorageError } from "../errors";
import type { CacheBudget } from "./cache-budget";
import { CacheEntries } from "./cache-entries";
import { CacheEntry, type FrozenChunk } from "./cache-entry";
import { fileError, fsyncFile } from "./cache-files";
import { CacheFills } from "./cache-fills";
import { CacheJournal } from "./cache-journal";
import { CacheReads } from "./cache-reads";
import { replayChunkFiles } from "./cache-replay";
import { CacheWarming } from "./cache-warming";
import { CacheWrites, type ChunkWrite } from "./cache-writes";
import type { DiskCacheOptions } from "./disk-cache-options";
import { DirectPieces } from "./direct-pieces";
import { FrozenContent } from "./frozen-content";
import { datasyncPinned } from "./pinned-fds";
import { discardIfRebooted, kernelBootId, readRebootMarker, removeRebootMarker, writeRebootMarker } from "./reboot-marker";
import { SpareFiles } from "./spare-files";
import { UnsyncedFiles } from "./unsynced-files";

export { registerDormantCaches } from "./dormant-caches";
export type { ChunkWrite } from "./cache-writes";
export type { DiskCacheOptions } from "./disk-cache-options";

export class DiskCache {
  readonly dir: string;
  readonly budget: CacheBudget;
  private readonly chunkDir: string;
  private readonly chunkLength: (index: number) => number;
  private readonly entries: CacheEntries;
  private readonly unsynced = new UnsyncedFiles();
  /** The journal's change count at the last sync that covered it (-1: none yet in this open). */
  private journalSyncedAt = -1;
  private readonly spares: SpareFiles;
  private readonly fills: CacheFills;
  private readonly warming: CacheWarming;
  private readonly frozen: FrozenContent;
  private readonly reads: CacheReads;
  private readonly writes: CacheWrites;
  /** O_DIRECT for large writes into cold chunks and for uploads' reads of them. */
  private readonly directPieces: DirectPieces;
  private closed = false;
  /** Flushes do not sync this cache; its reboot marker is in place. */
  readonly syncsLazily: boolean;
  /** Opened after a reboot that found it unsynced: it started empty. */
  discardedAfterReboot = false;
  /** A marker left by a lazy owner in this boot: the next sync covers every file, then removes it. */
  private rebootMarkerToClear = false;

  private constructor(options: DiskCacheOptions, journal: CacheJournal, syncsLazily: boolean) {
    this.dir = options.dir;
    this.syncsLazily = syncsLazily;
    this.budget = options.budget;
    this.chunkDir = path.join(options.dir, "c");
    this.chunkLength = options.chunkLength;
    this.directPieces = new DirectPieces(options.directWrites === true);
    this.spares = new SpareFiles(path.join(options.dir, "spare"));
    this.entries = new CacheEntries(this.chunkDir, journal, options.budget, this.spares);
    this.reads = new CacheReads(this.entries, options.budget, this.directPieces);
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
        placeFill: (index, generation, from) => this.entries.placeFill(index, generation, from),
        enterFill: (landed) => this.enterFill(landed),
      },
    });
    this.warming = new CacheWarming({
      isCurrent: (entry) => this.entries.get(entry.index) === entry,
      fdOf: (entry) => this.entries.fdOf(entry),
      chunkLength: this.chunkLength,
    });
    this.frozen = new FrozenContent(
      path.join(options.dir, "frozen"),
      {
        chunkLength: this.chunkLength,
        filePath: (index) => this.entries.filePath(index),
        readInto: (entry, within, target, targetOffset, length) => this.readInto(entry, within, target, targetOffset, length),
        readWhole: (entry, data) => this.reads.readWhole(entry, data),
      },
      options.maxFrozenMemoryBytes,
    );
    this.writes = new CacheWrites({
      dir: this.dir,
      entries: this.entries,
      budget: this.budget,
      spares: this.spares,
      frozen: this.frozen,
      unsynced: this.unsynced,
      directPieces: this.directPieces,
      chunkLength: this.chunkLength,
      cancelFill: (index) => this.fills.cancel(index),
    });
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
      cache.entries.addReplayed(replayed);
    }
    cache.entries.compact();
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
    return this.entries.dirtyChunks;
  }

  /** Bytes of chunk files (clean + dirty), for this volume. */
  get cachedBytes(): number {
    return this.entries.cachedBytes;
  }

  /** Bytes of dirty chunks, for this volume. */
  get dirtyBytes(): number {
    return this.entries.dirtyBytes;
  }

  // ---- reads -----------------------------------------------------------------------------------

  /** Copies `length` bytes at `within` of a cached chunk into `target` (synchronous). */
  readInto(entry: CacheEntry, within: number, target: Uint8Array, targetOffset: number, length: number): void {
    this.reads.readInto(entry, within, target, targetOffset, length);
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
    this.reads.readWhole(entry, data);
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

  /** The entry of a placed fill (`cold`: written with O_DIRECT, and then without a descriptor: fd -1). */
  private enterFill(landed: { index: number; generation: number; fd: number; bytes: number; cold: boolean }): void {
    const entry = new CacheEntry(this.entries, landed.index);
    entry.generation = landed.generation;
    entry.bytes = landed.bytes;
    entry.cold = landed.cold;
    entry.fd = landed.fd;
    this.entries.set(entry);
    // A lazy cache's clean close syncs every file before it drops its reboot marker: this one too.
    if (this.syncsLazily) this.unsynced.mark(entry);
    if (entry.fd >= 0) this.budget.fileOpened(entry);
    this.entries.account(entry, +1);
    this.budget.addClean(entry);
    this.budget.evictToTarget();
  }

  // ---- writes (cache-writes.ts) ----------------------------------------------------------------

  /** See CacheWrites.needsContent. */
  needsContent(index: number, within: number, length: number, committed: boolean): boolean {
    return this.writes.needsContent(index, within, length, committed);
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
    return this.writes.write(piece, committed);
  }

  /** Makes a fetched committed chunk dirty with its content (the cache could not keep it clean). */
  adoptFetched(index: number, data: Buffer): void {
    this.assertOpen();
    this.writes.adoptFetched(index, data);
  }

  /** The whole chunk becomes a hole: no file now, no object after the next commit. */
  punchHole(index: number, committed: boolean): void {
    this.assertOpen();
    this.writes.punchHole(index, committed);
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
      this.entries.drop(entry);
      return;
    }
    this.entries.makeClean(entry, generation);
  }

  /**
   * Before a commit naming the frozen content as `generation` goes to the index: journals the chunk
   * as landing, if it still holds exactly that content, so an open after a crash that lost the
   * commit's answer finds it clean when the index has it. Best effort: unjournalled, the chunk
   * merely stays dirty and is committed again.
   */
  markLanding(frozen: FrozenChunk, generation: number): void {
    if (this.closed) return;
    const entry = this.entries.get(frozen.index);
    if (entry !== frozen.entry || entry.version !== frozen.version || !entry.dirty || entry.hole) return;
    try {
      this.entries.markLanding(entry, generation);
    } catch {
      // ENOSPC and the like: the chunk stays plain dirty.
    }
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
    if (!this.closed) this.entries.compactIfLarge();
  }

  // ---- FLUSH ---------------------------------------------------------------------------------

  /**
   * Makes every write so far durable on the local disk: fdatasyncs the chunk files written since
   * the last call and the journal when it changed, through the descriptors the cache holds (pinned
   * while the call runs: pinned-fds.ts), and fsyncs the chunk directory when files came or went.
   */
  async sync(): Promise<void> {
    this.assertOpen();
    const batch = this.unsynced.take();
    const journalChanges = this.entries.journalChanges;
    const journalMoved = journalChanges !== this.journalSyncedAt;
    try {
      // In parallel: nothing is acknowledged before all of them are done, and a crash meanwhile is
      // one before the FLUSH, whatever reached the disk first.
      const syncs: Promise<void>[] = [];
      for (const entry of batch.entries) {
        // A hole has no file; an entry dropped since was clean: its content is in the bucket.
        if (!entry.hole && this.entries.get(entry.index) === entry) syncs.push(datasyncPinned(this.entries.fdOf(entry)));
      }
      if (batch.directoryChanged) syncs.push(fsyncFile(this.chunkDir));
      if (journalMoved) syncs.push(this.entries.datasyncJournal());
      await Promise.all(syncs);
      if (this.closed) throw new StorageError("ESHUTDOWN", `cache ${this.dir} is closed`);
      this.journalSyncedAt = journalChanges;
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

  private assertOpen(): void {
    if (this.closed) throw new StorageError("ESHUTDOWN", `cache ${this.dir} is closed`);
  }

  /**
   * Closes files and the journal and leaves the budget. With `compact` (a clean close) the
   * journal is folded into the snapshot first; without it (abandon) nothing more is written.
   */
  close(compact: boolean): void {
    if (this.closed) return;
    if (compact) this.entries.compact();
    // Synced to the last file (the owner's close synced; nothing came since): a reboot may keep it.
    if (compact && this.syncsLazily && this.unsynced.clean) removeRebootMarker(this.dir);
    this.closed = true;
    this.fills.close();
    // The files stay for the next open; until then the budget counts them as a dormant cache,
    // evictable whole unless it holds uncommitted data.
    const onDisk = this.entries.cachedBytes;
    const evictable = this.entries.dirtyChunks === 0;
    this.entries.close();
    this.budget.addDormant(this.dir, onDisk, evictable);
  }
}
