/**
 * One volume's persistent chunk cache: `<dir>/c/<index 16 hex>` files, a journal of their state
 * (clean generation | dirty) and its snapshot. A commit in progress keeps its frozen content as an
 * in-memory undo log of what later writes overwrote (or, past a memory allowance, a copy in
 * `<dir>/frozen/`): nothing of it needs to survive a crash, since a restart commits afresh from the
 * dirty chunks. It knows files and journal order, not stores or commits.
 *
 * Ordering rules that make kill -9 safe:
 * - a chunk is journalled dirty BEFORE its file is first modified; a FLUSH fsyncs the files
 *   written since the last one, the directory when files came or went, then the journal;
 * - a fetched chunk's file is written in full BEFORE it is journalled (a torn fill is a stray
 *   file, deleted on open); an evicted file is unlinked before its drop is journalled.
 * Hot path: reads and writes of cached chunks are positional readSync/writeSync on an fd kept
 * open in the budget's LRU; page-cached data never pays a thread-pool hop. A chunk whose pages may
 * be on disk only (`CacheEntry.cold`: written by a direct fill, or found at open) is first read
 * once through the thread pool (warm), so a synchronous read does not wait on the disk; a write
 * smaller than a page into a cold chunk may still read that page synchronously.
 * Fills of fetched chunks are the exception: writing a fresh file costs 1-2.5 ms per MiB here, so
 * it goes through the thread pool (see fillClean) while readers are served the fetched bytes,
 * with O_DIRECT where the bytes are page-aligned. For the same reason, on a cloud-durability volume
 * (directWrites), a large page-aligned write into a chunk that is new or cold goes to the disk with
 * O_DIRECT (direct-pieces.ts) and leaves it cold, and an upload reads a cold chunk back with O_DIRECT.
 * A full disk (ENOSPC) first evicts every clean chunk and tries again, then fails the write
 * with StorageError("ENOSPC"): the journal and every other chunk stay as they were.
 */
import { closeSync, constants as fsConstants, copyFileSync, existsSync, fstatSync, ftruncateSync, linkSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, truncateSync, unlinkSync, writeSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { open as openHandle, rm } from "node:fs/promises";
import path from "node:path";
import { StorageError, isStorageError } from "../errors";
import type { CacheBudget } from "./cache-budget";
import { CacheEntry, type FrozenChunk } from "./cache-entry";
import { CacheJournal, KIND_CLEAN, KIND_DIRTY, KIND_DROP, type ReplayedChunk } from "./cache-journal";
import { isPageAligned, O_DIRECT } from "./direct-io-buffers";
import { DirectPieces } from "./direct-pieces";
import { openFile, readAt, writeFileFully, type FillWriter } from "./fill-writer";
import { discardIfRebooted, kernelBootId, readRebootMarker, removeRebootMarker, writeRebootMarker } from "./reboot-marker";

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
  /**
   * Fills whose bytes are page-aligned (see direct-io-buffers.ts) are written with O_DIRECT, after
   * a delay (default true where the file system takes O_DIRECT). See fillClean.
   */
  directFills?: boolean;
  /**
   * Large page-aligned writes into a new or cold chunk, and an upload's read of a cold chunk, use
   * O_DIRECT where the file system takes it (default false). See direct-pieces.ts: it saves the
   * CPU of new page-cache pages, and costs a disk wait per write and a cold chunk, so it suits a
   * volume whose writes wait for the bucket anyway (cloud durability), not one whose writes should
   * come back at memory speed and be read back warm.
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
}

/** A fetched chunk on its way into the cache; `data` serves readers until its file is in place. */
interface PendingFill {
  readonly generation: number;
  readonly data: Buffer;
  /** Written with O_DIRECT (its bytes are page-aligned), once held back long enough (see fillClean). */
  readonly direct: boolean;
  /** Its file is being written (a direct fill waits for that; others start at once). */
  started: boolean;
  /** Resolves once the fill is in place or discarded and its file and descriptor are dealt with. */
  readonly settled: Promise<void>;
  readonly settle: () => void;
}

const ZEROS = Buffer.alloc(64 * 1024);
const RESOLVED: Promise<void> = Promise.resolve();
/**
 * Memory this volume may hold for frozen content (undo logs and full copies). Past it, content is
 * copied aside into a file instead: slower, but a commit of a huge dirty set cannot exhaust memory.
 */
const DEFAULT_MAX_FROZEN_MEMORY = 64 * 1024 * 1024;
/** Emptied chunk files kept for reuse per volume. */
const MAX_SPARES = 64;
/**
 * Fills in flight hold their fetched buffers: this bounds that memory (and their descriptors,
 * which are outside the budget's fd LRU until the fill lands) when the disk is slower than the store.
 */
const DEFAULT_MAX_FILLING = 96 * 1024 * 1024;
/**
 * Held back direct fills (see fillClean): more than the read-ahead keeps in flight (16 chunks by
 * default), well under DEFAULT_MAX_FILLING so that the ones being written still fit beside them
 * (a fill refused for room is fetched again by the reader that wanted it).
 */
const DEFAULT_FILL_DELAY = 32 * 1024 * 1024;
/** Held fills are written anyway once no new fill came for this long (a reader stopped). */
const FILL_HOLD_MS = 2000;
/** Warming reads a cold file in pieces of at most this. */
const WARM_PIECE = 1024 * 1024;
/**
 * Warm-ups at once: a reader that meets a run of cold chunks (every chunk is cold after a restart)
 * waits for each in turn, and the thread pool has 4 threads; one at a time left 3 idle.
 */
const WARM_PARALLEL = 4;

export class DiskCache {
  readonly dir: string;
  readonly budget: CacheBudget;
  private readonly chunkDir: string;
  private readonly frozenDir: string;
  private readonly spareDir: string;
  /** Empty files ready to become chunk files (see createFile). */
  private readonly spares: string[] = [];
  private spareSerial = 0;
  private readonly journal: CacheJournal;
  private readonly chunkLength: (index: number) => number;
  private readonly entries = new Map<number, CacheEntry>();
  private unsynced: CacheEntry[] = [];
  private directoryChanged = false;
  private versions = 0;
  private frozenCount = 0;
  /** Bytes held by undo logs and in-memory copies of frozen chunks. */
  private frozenMemory = 0;
  private readonly maxFrozenMemory: number;
  private closed = false;
  /**
   * Fills in flight, at most one per chunk and only while the chunk has no entry: whatever creates
   * an entry (a write, a trim) cancels the fill first, so a pending fill's bytes are always the
   * chunk's current content, and a fill that lands finds itself cancelled and discards its file.
   */
  private readonly fills = new Map<number, PendingFill>();
  /** Every fill's settled promise, including fills cancelled or abandoned by close. */
  private readonly fillsInFlight = new Set<Promise<void>>();
  /** Bytes of `fills`, reserved in the budget's cached bytes from the start (see fillClean). */
  private fillingBytes = 0;
  private readonly maxFillingBytes: number;
  private readonly fillWriter: FillWriter;
  /** O_DIRECT for large writes into cold chunks and for uploads' reads of them. */
  private readonly directPieces: DirectPieces;
  /** Cleared for good by the first refusal of O_DIRECT (a file system without it). */
  private directFills: boolean;
  private readonly fillDelayBytes: number;
  /** Bytes of direct fills not started yet. */
  private delayedFillBytes = 0;
  private lastHeldAt = 0;
  private holdTimer: NodeJS.Timeout | undefined;
  /** Warm-ups in progress or waiting, one per entry; at most WARM_PARALLEL run, each through a scratch buffer of `warmScratch`. */
  private readonly warming = new Map<CacheEntry, Promise<void>>();
  private warmsRunning = 0;
  private readonly warmWaiting: Array<() => void> = [];
  /** Free scratch buffers of warm-ups (at most WARM_PARALLEL are ever made). */
  private readonly warmScratch: Buffer[] = [];
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
    this.maxFrozenMemory = options.maxFrozenMemoryBytes ?? DEFAULT_MAX_FROZEN_MEMORY;
    this.maxFillingBytes = options.maxFillingBytes ?? DEFAULT_MAX_FILLING;
    this.fillWriter = options.fillWriter ?? writeFileFully;
    this.directFills = options.directFills !== false && O_DIRECT !== undefined;
    this.directPieces = new DirectPieces(options.directWrites === true);
    this.fillDelayBytes = options.fillDelayBytes ?? DEFAULT_FILL_DELAY;
    this.chunkDir = path.join(options.dir, "c");
    this.frozenDir = path.join(options.dir, "frozen");
    this.spareDir = path.join(options.dir, "spare");
    this.chunkLength = options.chunkLength;
    this.journal = journal;
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
    const spareDir = path.join(options.dir, "spare");
    mkdirSync(spareDir, { recursive: true });
    const { journal, chunks } = CacheJournal.open(options.dir);
    const cache = new DiskCache(options, journal, options.lazySync === true && bootId !== undefined);
    cache.discardedAfterReboot = discarded;
    // Spare inodes survive restarts; emptied again in case a crash cut a createFile short.
    for (const name of readdirSync(spareDir)) {
      const spare = path.join(spareDir, name);
      if (cache.spares.length < MAX_SPARES && name.startsWith("s")) {
        truncateSync(spare, 0);
        cache.spares.push(spare);
        cache.spareSerial = Math.max(cache.spareSerial, Number.parseInt(name.slice(1), 10) || 0);
      } else {
        rmSync(spare, { force: true });
      }
    }
    const files = new Set(readdirSync(chunkDir));
    for (const [index, state] of chunks) {
      const name = fileName(index);
      const hasFile = files.delete(name);
      const length = index < options.chunkCount ? options.chunkLength(index) : -1;
      if (length < 0) {
        if (hasFile) unlinkSync(path.join(chunkDir, name));
        continue;
      }
      const entry = new CacheEntry(cache, index);
      if (state.dirty) {
        entry.dirty = true;
        entry.version = ++cache.versions;
        if (hasFile) {
          // Content as last written (a resize may have moved the end: fit the file to the chunk).
          const fd = openSync(path.join(chunkDir, name), "r+");
          if (fstatSync(fd).size !== length) ftruncateSync(fd, length);
          closeSync(fd);
          entry.bytes = length;
        } else {
          entry.hole = true;
        }
        cache.entries.set(index, entry);
        cache.account(entry, +1);
      } else if (hasFile) {
        const file = path.join(chunkDir, name);
        const size = existsSync(file) ? readSizeOf(file) : -1;
        if (size === length && keepClean(index, state.generation)) {
          entry.generation = state.generation;
          entry.bytes = length;
          // After a reboot (or a direct fill) its pages are on disk only: the first read warms them.
          entry.cold = true;
          cache.entries.set(index, entry);
          cache.account(entry, +1);
          options.budget.addClean(entry);
        } else {
          unlinkSync(file);
        }
      }
    }
    // Files the journal does not name: fills torn by a crash before their record.
    for (const stray of files) rmSync(path.join(chunkDir, stray), { force: true });
    journal.compact(cache.journalState());
    const marked = readRebootMarker(options.dir); // this boot's, if any: discardIfRebooted took another's
    if (marked !== undefined) {
      // A lazy owner that did not close cleanly wrote here in this boot: the next sync covers all it
      // may have left unsynced (for a lazy owner, at close; else at the first flush, which then drops the marker).
      for (const entry of cache.entries.values()) if (!entry.hole) cache.markUnsynced(entry);
      cache.directoryChanged = true;
      cache.rebootMarkerToClear = !cache.syncsLazily;
    } else if (cache.syncsLazily) {
      writeRebootMarker(options.dir, bootId!);
    }
    options.budget.evictToTarget();
    return cache;
  }

  /** Chunk files written since the last sync (or, after a crash of a lazy owner, since its last one). */
  get unsyncedCount(): number {
    return this.unsynced.length;
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
    const length = this.chunkLength(index);
    const data = allocate(length);
    this.readWhole(entry, data);
    return { data, version: entry.version };
  }

  /**
   * Starts caching a fetched clean chunk; returns whether it started. Its file is written off the
   * event loop into a spare name, then renamed into place and journalled clean (in that order,
   * on the event loop, after checking that nothing overtook it). Until then `filling(index)`
   * serves readers from `data`. Best effort: nothing is cached when the disk refuses (ENOSPC
   * included), when a write or trim reaches the chunk first (its entry wins; the file is
   * discarded), when the cache closes meanwhile, or when `maxFillingBytes` are in flight already.
   * The bytes count toward the budget from the start: eviction makes room before the write, and
   * a fill that would still leave the budget past its target (dirty data, other fills) is skipped.
   *
   * Page-aligned bytes (see direct-io-buffers.ts) are written with O_DIRECT: the kernel then takes
   * them straight from `data` instead of copying them into new page-cache pages, which cost about as
   * much CPU as the whole rest of a cold read on these VMs (memory new to the guest). Such a fill is
   * held back until `fillDelayBytes` of them wait: a sequential reader, served from `data`
   * meanwhile, has usually read the chunk by then, so it need not come back from the disk. The chunk
   * lands cold (see CacheEntry.cold).
   */
  fillClean(index: number, generation: number, data: Buffer): boolean {
    if (this.closed || this.entries.has(index) || this.fills.has(index)) return false;
    if (this.fillingBytes > 0 && this.fillingBytes + data.length > this.maxFillingBytes) return false;
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const fill: PendingFill = { generation, data, direct: this.directFills && isPageAligned(data), started: false, settled, settle };
    this.fills.set(index, fill);
    this.fillingBytes += data.length;
    this.budget.addCached(data.length);
    this.budget.evictToTarget();
    if (this.budget.cachedBytes > this.budget.targetBytes) {
      // Fills cannot be evicted: one that does not fit beside the dirty data and other fills is skipped.
      this.cancelFill(index, fill);
      return false;
    }
    this.fillsInFlight.add(settled);
    void settled.then(() => this.fillsInFlight.delete(settled));
    if (!fill.direct) {
      this.startFill(index, fill);
    } else {
      this.delayedFillBytes += data.length;
      this.startDelayedFills(this.fillDelayBytes);
      this.lastHeldAt = Date.now();
      this.holdTimer ??= setTimeout(() => this.heldTooLong(), FILL_HOLD_MS).unref();
    }
    return true;
  }

  private heldTooLong(): void {
    this.holdTimer = undefined;
    if (this.closed || this.delayedFillBytes === 0) return;
    const waited = Date.now() - this.lastHeldAt;
    if (waited >= FILL_HOLD_MS) this.startHeldFills();
    else this.holdTimer = setTimeout(() => this.heldTooLong(), FILL_HOLD_MS - waited).unref();
  }

  /** Starts the oldest delayed fills until at most `keepBytes` of them wait. */
  private startDelayedFills(keepBytes: number): void {
    if (this.delayedFillBytes <= keepBytes) return;
    for (const [index, fill] of this.fills) {
      if (fill.started) continue;
      this.startFill(index, fill);
      if (this.delayedFillBytes <= keepBytes) return;
    }
  }

  /** Writes every fill still held back (a closing volume keeps them for its next open). */
  startHeldFills(): void {
    this.startDelayedFills(0);
  }

  private startFill(index: number, fill: PendingFill): void {
    fill.started = true;
    if (fill.direct) this.delayedFillBytes -= fill.data.length;
    void this.writeFill(index, fill, this.claimFillFile()).then(fill.settle);
  }

  /** The content of a chunk whose fill is in flight (always its current content), if any. */
  filling(index: number): Buffer | undefined {
    return this.fills.get(index)?.data;
  }

  /** Resolves once the fill of `index` (if any) has landed or been discarded; a held-back one starts now. */
  fillSettled(index: number): Promise<void> {
    const fill = this.fills.get(index);
    if (fill === undefined) return RESOLVED;
    if (!fill.started) this.startFill(index, fill);
    return fill.settled;
  }

  /** Starts the fills held back, then resolves once every fill is done with its file, even those close abandoned. */
  async fillsSettled(): Promise<void> {
    this.startHeldFills();
    while (this.fillsInFlight.size > 0) await Promise.all([...this.fillsInFlight]);
  }

  /**
   * A fill's file: an emptied spare, renamed first to a name no other instance will ever use, so a
   * fill still writing after close (abandon) cannot touch a spare a reopened cache took over.
   */
  private claimFillFile(): { path: string; exists: boolean } {
    const claimed = path.join(this.spareDir, `f${randomUUID()}`);
    const spare = this.spares.pop();
    if (spare === undefined) return { path: claimed, exists: false };
    try {
      renameSync(spare, claimed);
      return { path: claimed, exists: true };
    } catch {
      return { path: claimed, exists: false }; // that spare is gone or unusable: start a new file
    }
  }

  /**
   * Opens (in the pool too: measured, a synchronous create here contends with the pool's writes
   * and costs the event loop twice the hop), writes, then lands or discards the fill.
   */
  private async writeFill(index: number, fill: PendingFill, file: { path: string; exists: boolean }): Promise<void> {
    let fd = -1;
    let written = false;
    // Decided here, not at fillClean: the first refusal of O_DIRECT turns it off for fills held meanwhile.
    const direct = fill.direct && this.directFills;
    try {
      if (direct) {
        fd = await this.writeDirect(index, fill, file);
        written = fd >= 0;
      } else {
        fd = await openFile(file.path, file.exists ? "r+" : "w+");
        if (this.fills.get(index) === fill) {
          await this.fillWriter(fd, fill.data);
          written = true;
        }
      }
    } catch {
      // ENOSPC or another refusal: the chunk stays uncached; its reader had the data already.
    }
    if (written && this.fills.get(index) === fill && this.landFill(index, fill, file.path, fd, direct)) return;
    this.cancelFill(index, fill);
    if (fd >= 0) closeSync(fd);
    // After close the directory may belong to a new instance, but this name is ours alone.
    await rm(file.path, { force: true }).catch(() => {});
  }

  /**
   * Writes a direct fill through an O_DIRECT descriptor, then opens the file again without it for
   * the entry (the hot path's reads and writes are not page-aligned). Returns that descriptor, or
   * -1 when the fill was cancelled meanwhile. The first EINVAL (a file system without O_DIRECT, or
   * alignment it will not take) turns direct fills off for this cache: this fill is then skipped.
   */
  private async writeDirect(index: number, fill: PendingFill, file: { path: string; exists: boolean }): Promise<number> {
    const flags = fsConstants.O_RDWR | O_DIRECT! | (file.exists ? 0 : fsConstants.O_CREAT | fsConstants.O_TRUNC);
    let direct = -1;
    try {
      direct = await openFile(file.path, flags);
      if (this.fills.get(index) !== fill) return -1;
      await this.fillWriter(direct, fill.data);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EINVAL") this.directFills = false;
      throw error;
    } finally {
      if (direct >= 0) closeSync(direct);
    }
    return openFile(file.path, "r+");
  }

  /**
   * Reads a cold chunk's file once off the event loop (through the thread pool, into a scratch
   * buffer), so its pages are in the page cache when the hot path reads it synchronously. Up to
   * WARM_PARALLEL run at once; callers of the same entry share one.
   */
  warm(entry: CacheEntry): Promise<void> {
    if (!entry.cold) return RESOLVED;
    const running = this.warming.get(entry);
    if (running !== undefined) return running;
    const done = this.warmSlot().then(async () => {
      const scratch = this.warmScratch.pop() ?? Buffer.allocUnsafe(WARM_PIECE);
      try {
        await this.readThrough(entry, scratch);
      } finally {
        this.warmScratch.push(scratch);
        this.warmsRunning--;
        this.warmWaiting.shift()?.();
      }
    });
    this.warming.set(entry, done);
    void done.then(() => this.warming.delete(entry));
    return done;
  }

  /** Waits until fewer than WARM_PARALLEL warm-ups run, then counts this one. */
  private async warmSlot(): Promise<void> {
    while (this.warmsRunning >= WARM_PARALLEL) await new Promise<void>((resolve) => this.warmWaiting.push(resolve));
    this.warmsRunning++;
  }

  private async readThrough(entry: CacheEntry, scratch: Buffer): Promise<void> {
    if (!entry.cold) return;
    try {
      if (this.entries.get(entry.index) === entry && !entry.hole) {
        const fd = this.fdOf(entry);
        const length = this.chunkLength(entry.index);
        for (let offset = 0; offset < length; ) {
          const { bytesRead } = await readAt(fd, scratch, 0, Math.min(WARM_PIECE, length - offset), offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
        }
      }
    } catch {
      // Evicted or closed meanwhile, or a failing disk: the synchronous read reports what is wrong.
    }
    entry.cold = false;
  }

  /** Puts a written fill in place: renamed, journalled clean, then an entry (`cold`: written with O_DIRECT). False: discard it. */
  private landFill(index: number, fill: PendingFill, from: string, fd: number, cold: boolean): boolean {
    const file = this.filePath(index);
    try {
      renameSync(from, file);
    } catch {
      return false;
    }
    try {
      this.journal.append(KIND_CLEAN, index, fill.generation);
    } catch {
      rmSync(file, { force: true }); // no record names it: it must not stay under the chunk's name
      return false;
    }
    this.cancelFill(index, fill);
    const entry = new CacheEntry(this, index);
    entry.generation = fill.generation;
    entry.bytes = fill.data.length;
    entry.cold = cold;
    entry.fd = fd;
    this.entries.set(index, entry);
    // A lazy cache's clean close syncs every file before it drops its reboot marker: this one too.
    if (this.syncsLazily) this.markUnsynced(entry);
    this.budget.fileOpened(entry);
    this.account(entry, +1);
    this.budget.addClean(entry);
    this.budget.evictToTarget();
    return true;
  }

  /** Forgets the chunk's fill (or only `which`, if given): its reservation leaves the budget. */
  private cancelFill(index: number, which?: PendingFill): void {
    const fill = this.fills.get(index);
    if (fill === undefined || (which !== undefined && fill !== which)) return;
    this.fills.delete(index);
    this.fillingBytes -= fill.data.length;
    this.budget.removeCached(fill.data.length);
    if (!fill.started) {
      // Never written: nothing on disk to deal with.
      if (fill.direct) this.delayedFillBytes -= fill.data.length;
      fill.started = true;
      fill.settle();
    }
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
    this.assertOpen();
    if (this.needsContent(index, within, length, committed)) return false;
    this.withSpace(() => this.applyWrite(index, within, length, source, sourceOffset));
    return true;
  }

  /** Makes a fetched committed chunk dirty with its content (the cache could not keep it clean). */
  adoptFetched(index: number, data: Buffer): void {
    this.assertOpen();
    if (this.entries.has(index)) return;
    this.cancelFill(index); // the chunk is about to change: a clean fill landing later would undo it
    this.withSpace(() => {
      const file = this.filePath(index);
      const fd = this.createFile(file, (created) => writeFully(created, data, 0, data.length, 0));
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
      this.directoryChanged = true;
      this.markUnsynced(entry);
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
      this.cancelFill(index);
      this.journal.append(KIND_DIRTY, index);
      entry = new CacheEntry(this, index);
      entry.dirty = true;
      entry.hole = true;
      this.entries.set(index, entry);
      this.account(entry, +1);
    } else if (!entry.hole) {
      this.makeDirty(entry);
      const file = this.filePath(index);
      this.closeFile(entry);
      if (entry.frozen !== undefined) {
        // Frozen content not read by its upload yet: keep it aside instead of deleting it.
        const side = this.sidePath(entry.frozen);
        renameSync(file, side);
        entry.frozen.sidePath = side;
        entry.frozen = undefined;
      } else {
        this.retireFile(file);
      }
      this.account(entry, -1);
      entry.hole = true;
      entry.bytes = 0;
      this.account(entry, +1);
      this.directoryChanged = true;
    }
    entry.version = ++this.versions;
  }

  private applyWrite(index: number, within: number, length: number, source: Buffer | null, sourceOffset: number): void {
    let entry = this.entries.get(index);
    if (entry === undefined) {
      if (source === null) return; // zeros into a chunk that is a hole everywhere
      this.cancelFill(index);
      this.journal.append(KIND_DIRTY, index);
      entry = new CacheEntry(this, index);
      entry.dirty = true;
      entry.hole = true;
      entry.version = ++this.versions;
      this.entries.set(index, entry);
      this.account(entry, +1);
    }
    if (entry.hole) {
      if (source === null) return; // zeros into a hole
      this.makeDirty(entry);
      // The piece is written before the file takes the chunk's name: a refused write leaves the hole.
      let direct = false;
      this.materialize(entry, (fd) => (direct = this.writePiece(fd, source, sourceOffset, length, within, true)));
      entry.cold = direct;
    } else if (source !== null && entry.frozen !== undefined && within === 0 && length === this.chunkLength(index)) {
      this.makeDirty(entry);
      this.replaceFrozen(entry, source, sourceOffset);
    } else {
      this.makeDirty(entry);
      this.preserveFrozen(entry, within, length);
      const fd = this.fdOf(entry);
      if (source === null) {
        for (let done = 0; done < length; ) {
          const n = Math.min(ZEROS.length, length - done);
          writeFully(fd, ZEROS, 0, n, within + done);
          done += n;
        }
      } else {
        this.writePiece(fd, source, sourceOffset, length, within, entry.cold);
      }
    }
    entry.version = ++this.versions;
    this.markUnsynced(entry);
  }

  /**
   * Writes a piece of a chunk's file: with O_DIRECT when the file's pages are not cached (`cold`: a
   * new file, or a cold chunk) and the piece is large and page-aligned, else buffered. True: it went
   * direct (the file stays cold).
   */
  private writePiece(fd: number, source: Buffer, sourceOffset: number, length: number, within: number, cold: boolean): boolean {
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
    const fd = this.createFile(this.filePath(entry.index), (created) => {
      ftruncateSync(created, length);
      fill(created);
    });
    this.account(entry, -1);
    entry.hole = false;
    entry.bytes = length;
    entry.fd = fd;
    this.account(entry, +1);
    this.budget.fileOpened(entry);
    this.directoryChanged = true;
    if (this.budget.cachedBytes > this.budget.targetBytes) this.budget.evictToTarget();
  }

  /**
   * A whole-chunk write to a frozen chunk: the frozen content keeps the old file (a hard link in
   * frozen/, no copy) and the new content becomes a new file renamed over the chunk's name. At
   * every point of a crash the chunk's name holds either the old or the new content.
   */
  private replaceFrozen(entry: CacheEntry, source: Buffer, sourceOffset: number): void {
    const frozen = entry.frozen!;
    const file = this.filePath(entry.index);
    const side = this.sidePath(frozen);
    const length = this.chunkLength(entry.index);
    linkSync(file, side);
    this.closeFile(entry);
    try {
      entry.fd = this.createFile(file, (created) => {
        ftruncateSync(created, length);
        writeFully(created, source, sourceOffset, length, 0);
      });
    } catch (error) {
      // Nothing replaced: drop the link, since a retry writing in place would change its inode too.
      unlinkSync(side);
      throw error;
    }
    frozen.sidePath = side;
    entry.frozen = undefined;
    this.budget.fileOpened(entry);
    this.directoryChanged = true;
  }

  /**
   * Before a write to a frozen chunk whose upload has not read it yet: keep what the write is
   * about to overwrite. Small writes go to the undo log; once the log would reach a quarter of the
   * chunk, one full copy replaces it; past this volume's memory allowance, a file aside.
   */
  private preserveFrozen(entry: CacheEntry, within: number, length: number): void {
    const frozen = entry.frozen;
    if (frozen === undefined) return;
    const chunkLength = this.chunkLength(entry.index);
    const wantsCopy = frozen.undoBytes + length >= chunkLength / 4;
    const memoryNeeded = wantsCopy ? chunkLength - frozen.undoBytes : length;
    if (this.frozenMemory + memoryNeeded > this.maxFrozenMemory) {
      const side = this.sidePath(frozen);
      copyFileSync(this.filePath(entry.index), side);
      frozen.sidePath = side;
      entry.frozen = undefined; // the side file is current content; the undo log still applies to it
      return;
    }
    if (wantsCopy) {
      const copy = Buffer.allocUnsafe(chunkLength);
      this.readInto(entry, 0, copy, 0, chunkLength);
      applyUndo(copy, frozen);
      this.frozenMemory += chunkLength - frozen.undoBytes;
      frozen.copy = copy;
      frozen.undo = [];
      frozen.undoBytes = 0;
      entry.frozen = undefined;
      return;
    }
    const previous = Buffer.allocUnsafe(length);
    this.readInto(entry, within, previous, 0, length);
    frozen.undo.push({ offset: within, data: previous });
    frozen.undoBytes += length;
    this.frozenMemory += length;
  }

  private markUnsynced(entry: CacheEntry): void {
    if (entry.unsynced) return;
    entry.unsynced = true;
    this.unsynced.push(entry);
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

  // ---- commits -------------------------------------------------------------------------------

  /** Freezes every dirty chunk (see freeze). */
  freezeDirty(): FrozenChunk[] {
    const frozen: FrozenChunk[] = [];
    for (const entry of this.entries.values()) if (entry.dirty) frozen.push(this.freeze(entry));
    return frozen;
  }

  /** Captures a dirty chunk's state for a commit; writes after this copy the content aside first. */
  freeze(entry: CacheEntry): FrozenChunk {
    const frozen: FrozenChunk = {
      entry,
      index: entry.index,
      version: entry.version,
      hole: entry.hole,
      sidePath: undefined,
      undo: [],
      undoBytes: 0,
      copy: undefined,
      taken: false,
      released: false,
    };
    if (!entry.hole) entry.frozen = frozen;
    this.frozenCount++;
    return frozen;
  }

  /**
   * The frozen content (read synchronously, so atomically with respect to writes), or null for a
   * hole. `allocate` gives the buffer a chunk's file is read into; content kept aside comes as is.
   */
  readFrozen(frozen: FrozenChunk, allocate: (length: number) => Buffer = Buffer.allocUnsafe): Buffer | null {
    this.assertOpen();
    if (frozen.hole) return null;
    if (frozen.copy !== undefined) return frozen.copy;
    let data: Buffer;
    if (frozen.sidePath !== undefined) {
      data = readFileSync(frozen.sidePath);
    } else {
      const entry = frozen.entry;
      data = allocate(this.chunkLength(entry.index));
      this.readWhole(entry, data);
      if (entry.frozen === frozen) entry.frozen = undefined;
    }
    applyUndo(data, frozen);
    frozen.taken = true;
    return data;
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
    if (frozen.released) return;
    frozen.released = true;
    this.frozenCount--;
    // After close, the directory may belong to a new instance: touch no file.
    if (this.closed) return;
    if (frozen.entry.frozen === frozen) frozen.entry.frozen = undefined;
    if (frozen.sidePath !== undefined) {
      rmSync(frozen.sidePath, { force: true });
      frozen.sidePath = undefined;
    }
    this.frozenMemory -= frozen.undoBytes + (frozen.copy?.length ?? 0);
    frozen.undo = [];
    frozen.undoBytes = 0;
    frozen.copy = undefined;
    frozen.taken = true;
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
    const batch = this.unsynced;
    this.unsynced = [];
    const files: string[] = [];
    for (const entry of batch) {
      entry.unsynced = false;
      if (!entry.hole) files.push(this.filePath(entry.index));
    }
    const directoryChanged = this.directoryChanged;
    this.directoryChanged = false;
    try {
      await Promise.all(files.map((file) => fsyncFile(file)));
      if (directoryChanged) await fsyncFile(this.chunkDir);
      if (this.closed) throw new StorageError("ESHUTDOWN", `cache ${this.dir} is closed`);
      await fsyncFile(path.join(this.dir, "journal"));
      if (this.rebootMarkerToClear && !this.closed) {
        removeRebootMarker(this.dir);
        this.rebootMarkerToClear = false;
      }
    } catch (error) {
      // Try again next time: these may still be unsynced.
      for (const entry of batch) this.markUnsynced(entry);
      if (directoryChanged) this.directoryChanged = true;
      if (isStorageError(error)) throw error;
      throw fileError(error, `syncing the cache of ${this.dir}`);
    }
  }

  // ---- eviction, files -------------------------------------------------------------------------

  /** Called by the budget: removes a clean chunk's file. */
  evict(entry: CacheEntry): void {
    if (entry.dirty) return;
    this.drop(entry);
  }

  private drop(entry: CacheEntry): void {
    this.closeFile(entry);
    if (!entry.hole) this.retireFile(this.filePath(entry.index));
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

  /**
   * Creates a chunk file: prepared (content written or size set) under a spare name first, then
   * renamed into place, so a crash never leaves a half-made file under a chunk's name. Reuses
   * an emptied file of an evicted chunk when there is one: creating an inode costs ~1 ms on
   * these disks, a rename ~20 µs.
   */
  private createFile(target: string, prepare: (fd: number) => void): number {
    const spare = this.spares.pop();
    const from = spare ?? path.join(this.spareDir, `n${++this.spareSerial}`);
    const fd = openSync(from, spare === undefined ? "w+" : "r+");
    try {
      prepare(fd);
      renameSync(from, target);
    } catch (error) {
      closeSync(fd);
      rmSync(from, { force: true });
      throw error;
    }
    return fd;
  }

  /** Removes a chunk file: emptied (its blocks freed) and kept as a spare, or deleted. */
  private retireFile(file: string): void {
    if (this.spares.length >= MAX_SPARES) {
      rmSync(file, { force: true });
      return;
    }
    try {
      truncateSync(file, 0);
      const spare = path.join(this.spareDir, `s${++this.spareSerial}`);
      renameSync(file, spare);
      this.spares.push(spare);
    } catch {
      rmSync(file, { force: true });
    }
  }

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
    return path.join(this.chunkDir, fileName(index));
  }

  private sidePath(frozen: FrozenChunk): string {
    return path.join(this.frozenDir, `${fileName(frozen.index)}-${frozen.version}`);
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageError("ESHUTDOWN", `cache ${this.dir} is closed`);
  }

  get pendingFrozen(): number {
    return this.frozenCount;
  }

  /**
   * Closes files and the journal and leaves the budget. With `compact` (a clean close) the
   * journal is folded into the snapshot first; without it (abandon) nothing more is written.
   */
  close(compact: boolean): void {
    if (this.closed) return;
    if (compact) this.journal.compact(this.journalState());
    // Synced to the last file (the owner's close synced; nothing came since): a reboot may keep it.
    if (compact && this.syncsLazily && this.unsynced.length === 0 && !this.directoryChanged) removeRebootMarker(this.dir);
    this.closed = true;
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    // Fills still writing are abandoned: each then closes its descriptor and deletes its own file.
    for (const index of [...this.fills.keys()]) this.cancelFill(index);
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

function fileName(index: number): string {
  return index.toString(16).padStart(16, "0");
}

function readSizeOf(file: string): number {
  const fd = openSync(file, "r");
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

function writeFully(fd: number, data: Uint8Array, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) done += writeSync(fd, data, offset + done, length - done, position + done);
}

async function fsyncFile(file: string): Promise<void> {
  let handle;
  try {
    handle = await openHandle(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return; // trimmed meanwhile: nothing to keep
    throw error;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isNoSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

function noSpace(error: unknown, dir: string): StorageError {
  return new StorageError("ENOSPC", `the local cache disk is full (${dir}); the write was refused, nothing else changed`, { cause: error });
}

function fileError(error: unknown, what: string): StorageError {
  if (isStorageError(error)) return error;
  if (isNoSpace(error)) return new StorageError("ENOSPC", `${what}: the local cache disk is full`, { cause: error });
  return new StorageError("EIO", `${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

/** Puts back what writes since the freeze overwrote, newest first, so the oldest (frozen) bytes win. */
function applyUndo(data: Buffer, frozen: FrozenChunk): void {
  for (let i = frozen.undo.length - 1; i >= 0; i--) {
    const { offset, data: previous } = frozen.undo[i]!;
    previous.copy(data, offset);
  }
}

/**
 * Counts the volume caches a gateway finds under its cache root at start as dormant, so the
 * target covers them before any is opened. Returns the volume ids whose cache holds uncommitted
 * data: the gateway must open those and commit them, client or no client.
 */
export function registerDormantCaches(root: string, budget: CacheBudget, bootId = kernelBootId()): string[] {
  const withDirtyData: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return withDirtyData; // no cache yet
  }
  for (const name of names) {
    const dir = path.join(root, name);
    if (!existsSync(path.join(dir, "c"))) continue;
    if (discardIfRebooted(dir, bootId)) continue; // unsynced before a reboot: nothing in it is kept
    const { journal, chunks } = CacheJournal.open(dir);
    journal.close();
    let dirty = false;
    for (const state of chunks.values()) dirty ||= state.dirty;
    let bytes = 0;
    for (const file of readdirSync(path.join(dir, "c"))) bytes += readSizeOf(path.join(dir, "c", file));
    budget.addDormant(dir, bytes, !dirty);
    if (dirty) withDirtyData.push(name);
  }
  return withDirtyData;
}
