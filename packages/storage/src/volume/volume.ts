/**
 * A volume: `size` bytes in fixed chunks, each an immutable object generation in the store, the chunk
 * map persisted through a ChunkIndex, the chunks in use held in a disk cache that survives kill -9.
 * This class checks requests and wires the parts (docs/architecture.md lists them). FLUSH: `local`
 * fsyncs the cache; `cloud` commits a freeze taken at the flush and leaves the disk unsynced until
 * close (a cache found unsynced after a reboot starts empty: cache/reboot-marker.ts).
 * Over our ~400-line aim on purpose: the constructor wires every part in one place.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { BlockDevice, DeviceCapabilities, Extent, WriteOptions, ZeroOptions } from "../block-device";
import { CacheBudget, type BudgetMember } from "../cache/cache-budget";
import { DiskCache } from "../cache/disk-cache";
import type { ChunkRef } from "../chunk-index";
import { StorageError, asEio, isStorageError } from "../errors";
import { systemClock } from "../util/clock";
import { ChunkFetches } from "./chunk-fetches";
import { ChunkStore } from "./chunk-store";
import { walkChunks } from "./chunk-walk";
import { CommitRunner, runLimited } from "./commit-run";
import { CommitScheduler } from "./commit-scheduler";
import { CommittedChunks } from "./committed-chunks";
import { ReadAhead } from "./read-ahead";
import type { VolumeContext, VolumeState } from "./volume-context";
import {
  checkChunkMap,
  checkVolumeOptions,
  type ChunkUploader,
  type Durability,
  type VolumeCounters,
  type VolumeLogger,
  type VolumeOptions,
  type VolumeStats,
} from "./volume-options";
import { VolumeReads } from "./volume-reads";
import { VolumeWrites } from "./volume-writes";
import { WriteBehind } from "./write-behind";

export type { ChunkUploader, CommittedMap, Durability, UploadTask, VolumeCounters, VolumeLogger, VolumeOptions, VolumeStats } from "./volume-options";

/** BLOCK_STATUS answers cover at most this many chunks; clients ask again for the rest. */
const MAX_STATUS_CHUNKS = 65_536;
const RESOLVED: Promise<void> = Promise.resolve();

export class Volume implements BlockDevice, BudgetMember {
  readonly volumeId: string;
  readonly size: number;
  readonly chunkSize: number;
  readonly capabilities: DeviceCapabilities;
  readonly durability: Durability;
  /** Read and commit totals since open, for metrics: read them, never write them. */
  readonly counters: VolumeCounters = { cacheHits: 0, cacheMisses: 0, commits: 0, commitSeconds: 0, lastCommitSeconds: 0 };

  private readonly chunkCount: number;
  private readonly disk: DiskCache;
  private readonly budget: CacheBudget;
  private readonly committed: CommittedChunks;
  private readonly privateDir: string | undefined;
  private readonly logger: VolumeLogger | undefined;
  private readonly concurrency: number;
  private readonly writeBehind: WriteBehind;
  private readonly fetches: ChunkFetches;
  private readonly reads: VolumeReads;
  private readonly writes: VolumeWrites;
  private readonly scheduler: CommitScheduler;
  private readonly commits: CommitRunner;

  /** Local flushes are serialised: a later one must not return before an earlier one's fsyncs. */
  private syncTail: Promise<void> = RESOLVED;
  private queuedSync: Promise<void> | undefined;
  /** Slow-path operations still running (close waits for them before its final commit). */
  private readonly active = new Set<Promise<unknown>>();
  private state: VolumeState = "open";
  private closing: Promise<void> | undefined;

  private constructor(
    options: VolumeOptions,
    snapshot: { epoch: number; chunks: Map<number, ChunkRef> },
    budget: CacheBudget,
    dir: string,
    privateDir: string | undefined,
  ) {
    this.volumeId = options.volumeId;
    this.size = options.size;
    this.chunkSize = options.chunkSize;
    this.durability = options.durability ?? "cloud";
    this.logger = options.logger;
    this.concurrency = Math.max(1, options.uploadConcurrency ?? 16);
    this.chunkCount = Math.ceil(this.size / this.chunkSize);
    this.budget = budget;
    this.privateDir = privateDir;
    const clock = options.clock ?? systemClock;
    const salt = options.generationSalt ?? 0;
    const chunkLength = (index: number) => this.chunkLength(index);
    this.committed = new CommittedChunks(snapshot, chunkLength);
    this.writeBehind = new WriteBehind({
      volumeId: this.volumeId,
      size: this.size,
      chunkSize: this.chunkSize,
      salt,
      committedEpoch: this.committed.epoch,
      concurrency: this.concurrency,
      enabled: options.writeBehind ?? true,
      host: {
        // In-process, not a queued job: see write-behind.ts (a failure is retried by the commit, as a job).
        upload: (record) => this.commits.runUploadAhead(record),
        isDirtyData: (index) => {
          const entry = this.disk.get(index);
          return entry !== undefined && entry.dirty && !entry.hole;
        },
        accepting: () => this.state === "open",
        failed: (error, record) => {
          if (this.state !== "closed")
            this.logger?.warn({ err: error, volumeId: this.volumeId, chunk: record.index }, "upload ahead of a commit failed; the commit uploads the chunk");
        },
      },
    });
    this.disk = DiskCache.open(
      {
        dir,
        budget,
        chunkCount: this.chunkCount,
        chunkLength,
        fillWriter: options.fillWriter,
        // A cloud flush's promise is kept by the bucket: the cache is synced only at close.
        lazySync: this.durability === "cloud",
        // Its writes wait for the bucket, not the disk: large ones skip the page cache (direct-pieces.ts).
        directWrites: this.durability === "cloud",
        bootId: options.bootId,
        clock,
      },
      (index, generation) => this.committed.get(index)?.generation === generation,
    );
    const ctx: VolumeContext = {
      volumeId: this.volumeId,
      chunkSize: this.chunkSize,
      chunkCount: this.chunkCount,
      chunkLength,
      disk: this.disk,
      chunks: new ChunkStore({
        store: options.store,
        volumeId: options.volumeId,
        codec: options.codec,
        buffers: options.buffers,
        owners: options.inherited && {
          ownerOf: (index, generation) => {
            const ref = this.committed.get(index);
            return ref?.generation === generation ? ref.owner : undefined;
          },
          codecFor: options.inherited.codecFor,
        },
      }),
      committed: this.committed,
      counters: this.counters,
      budget,
      logger: this.logger,
      concurrency: this.concurrency,
      state: () => this.state,
      track: (promise) => this.track(promise),
    };
    this.fetches = new ChunkFetches(ctx);
    this.reads = new VolumeReads(ctx, this.fetches, new ReadAhead(ctx, this.fetches, Math.max(0, options.readAheadChunks ?? 8)));
    const uploader: ChunkUploader = options.uploader ?? { upload: (task) => this.uploadFrozenChunk(task.commitId, task.index, task.generation) };
    this.commits = new CommitRunner(ctx, {
      index: options.index,
      writeBehind: this.writeBehind,
      salt,
      uploader: () => uploader,
      onCommitted: options.onCommitted,
      clock,
    });
    this.scheduler = new CommitScheduler({
      volumeId: this.volumeId,
      intervalMs: Math.max(1, options.commitIntervalMs ?? 5_000),
      idleMs: options.commitIdleMs === undefined ? undefined : Math.max(1, options.commitIdleMs),
      clock,
      budget,
      logger: this.logger,
      isOpen: () => this.state === "open",
      dirtyChunks: () => this.disk.dirtyCount,
      commit: () => this.commits.cycle(),
    });
    this.writes = new VolumeWrites(ctx, this.fetches, {
      modifying: () => this.scheduler.modifying(),
      wrote: (offset, end) => this.writeBehind.noteWrite(offset, end),
      flush: () => this.flush(),
      member: this,
    });
    if (this.disk.discardedAfterReboot) {
      this.logger?.warn({ volumeId: this.volumeId }, "the cache was not synced before a reboot: it starts empty, and reads come from the bucket again");
    }
    budget.register(this);
    this.capabilities = volumeCapabilities(this.chunkSize);
    if (this.disk.dirtyCount > 0) {
      // Dirty chunks from before a restart: commit them at once.
      this.logger?.debug({ volumeId: this.volumeId, dirtyChunks: this.disk.dirtyCount }, "re-queued dirty chunks from the cache");
      this.requestCommit();
    }
  }

  /** Loads the chunk map, replays the disk cache and returns the open volume. */
  static async open(options: VolumeOptions): Promise<Volume> {
    checkVolumeOptions(options);
    let snapshot;
    try {
      snapshot = await options.index.load();
    } catch (error) {
      throw asEio(error, "loading the chunk map");
    }
    checkChunkMap(options, snapshot.chunks);
    const budget =
      options.cacheBudget ??
      new CacheBudget({ targetBytes: options.cacheBytes ?? 256 * 1024 * 1024, dirtyLimitBytes: options.dirtyLimitBytes ?? 64 * 1024 * 1024 });
    const privateDir = options.cacheDir === undefined ? mkdtempSync(path.join(tmpdir(), "stratus-cache-")) : undefined;
    const dir = path.join(options.cacheDir ?? privateDir!, options.volumeId);
    try {
      return new Volume(options, snapshot, budget, dir, privateDir);
    } catch (error) {
      if (privateDir !== undefined) rmSync(privateDir, { recursive: true, force: true });
      throw isStorageError(error) ? error : new StorageError("EIO", `opening the cache of ${options.volumeId} failed`, { cause: error });
    }
  }

  // ---- reads and writes (volume-reads.ts, volume-writes.ts) -----------------------------------

  read(offset: number, target: Uint8Array): Promise<void> {
    const refused = this.refuse(offset, target.length, "read");
    if (refused) return Promise.reject(refused);
    return this.reads.read(offset, target);
  }

  readNow(offset: number, target: Uint8Array): boolean {
    if (this.refuse(offset, target.length, "read") !== undefined) return false; // read() reports it
    return this.reads.readNow(offset, target);
  }

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    const refused = this.refuse(offset, data.length, "write");
    if (refused) return Promise.reject(refused);
    return this.writes.change(offset, data.length, asBuffer(data), options);
  }

  writeNow(offset: number, data: Uint8Array): boolean {
    if (this.refuse(offset, data.length, "write") !== undefined) return false;
    return this.writes.writeNow(offset, asBuffer(data));
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    const refused = this.refuse(offset, length, "write");
    if (refused) return Promise.reject(refused);
    return this.writes.change(offset, length, null, options);
  }

  /** Whole chunks become holes (cheap), so FAST_ZERO is honoured; NO_HOLE may still leave a hole: it reads as zeros either way. */
  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    const refused = this.refuse(offset, length, "write");
    if (refused) return Promise.reject(refused);
    return this.writes.change(offset, length, null, options);
  }

  // ---- FLUSH and commits (commit-scheduler.ts, commit-run.ts) ---------------------------------

  flush(): Promise<void> {
    if (this.state === "closed") return Promise.reject(new StorageError("ESHUTDOWN", `volume ${this.volumeId} is closed`));
    const due = this.scheduler.flushed();
    let cycle: Promise<void> | undefined;
    if ((this.durability === "cloud" || due) && this.disk.dirtyCount > 0) {
      this.scheduler.committing();
      cycle = this.commits.cycle(); // freezes now, at this flush, unless a cycle is running
    }
    // A failed commit is retried in the background either way; a cloud flush also reports it.
    cycle?.catch((error: unknown) => this.scheduler.failed(error));
    // A cloud flush is kept by the bucket; the local disk is synced too only where a reboot cannot be told.
    const synced = this.disk.syncsLazily ? RESOLVED : this.syncLocal();
    if (this.durability === "cloud") return this.track(Promise.all([synced, cycle]).then(() => undefined));
    return synced;
  }

  /**
   * Commits everything written before this call to the bucket (a freeze taken now, or by the
   * cycle queued behind a running one) and waits for it, whatever the durability. For a
   * handoff to another gateway, and tests. A failure is also retried in the background.
   */
  commit(): Promise<void> {
    if (this.state === "closed") return Promise.reject(new StorageError("ESHUTDOWN", `volume ${this.volumeId} is closed`));
    const cycle = this.commits.cycle();
    cycle.catch((error: unknown) => this.scheduler.failed(error));
    return this.track(cycle);
  }

  /** BudgetMember: dirty bytes passed half the gateway's limit (or dirty chunks after a restart). */
  requestCommit(): void {
    this.scheduler.requestCommit();
  }

  get dirtyBytes(): number {
    return this.disk.dirtyBytes;
  }

  /**
   * Called by the ChunkUploader (in-process, or a queue worker) for each frozen chunk: reads the
   * frozen content, encodes and stores it. `storedSize` 0 means "no object" (all zeros). Throws
   * ENOTFOUND when that commit is no longer running.
   */
  uploadFrozenChunk(commitId: string, index: number, generation: number): Promise<{ storedSize: number }> {
    return this.commits.uploadFrozenChunk(commitId, index, generation);
  }

  /** Makes every write so far durable in the local cache (files and journal fsynced); commits nothing. */
  syncLocally(): Promise<void> {
    return this.state === "closed" ? RESOLVED : this.syncLocal();
  }

  private syncLocal(): Promise<void> {
    if (this.queuedSync !== undefined) return this.queuedSync;
    const run = this.syncTail.then(() => {
      this.queuedSync = undefined;
      return this.disk.sync();
    });
    this.queuedSync = run;
    this.syncTail = run.catch(() => {});
    return run;
  }

  // ---- status, prefetch, lifecycle ------------------------------------------------------------

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    const refused = this.refuse(offset, Math.max(length, 1), "read");
    if (refused) throw refused;
    const firstChunk = Math.floor(offset / this.chunkSize);
    const end = Math.min(offset + Math.max(length, 1), this.size, (firstChunk + MAX_STATUS_CHUNKS) * this.chunkSize);
    const extents: Extent[] = [];
    walkChunks(offset, end - offset, this.chunkSize, (piece) => {
      const hole = !this.isAllocated(piece.index);
      const last = extents.at(-1);
      if (last !== undefined && last.hole === hole) last.length += piece.length;
      else extents.push({ length: piece.length, hole, zero: hole });
    });
    return extents;
  }

  async cache(offset: number, length: number): Promise<void> {
    const refused = this.refuse(offset, length, "read");
    if (refused) throw refused;
    if (length === 0) return;
    const wanted: number[] = [];
    walkChunks(offset, length, this.chunkSize, ({ index }) => {
      if (this.disk.get(index) === undefined && this.committed.has(index)) wanted.push(index);
    });
    await this.track(
      runLimited(wanted, this.concurrency, async (index) => {
        const ref = this.committed.get(index);
        if (ref === undefined || this.disk.get(index) !== undefined) return;
        if (this.disk.filling(index) === undefined) await this.fetches.fetch(index, ref.generation);
        await this.disk.fillSettled(index); // CACHE replies once the chunk is on disk
      }),
    );
  }

  stats(): VolumeStats {
    return {
      logicalBytes: this.size,
      storedBytes: this.committed.storedBytes,
      compressionRatio: this.committed.compressionRatio,
      dirtyBytes: this.disk.dirtyBytes,
      chunksStored: this.committed.size,
      epoch: this.committed.epoch,
      cachedBytes: this.disk.cachedBytes,
      queueDepth: this.commits.pendingUploads + this.writeBehind.running,
      lastCommitAt: this.committed.lastCommitAt,
    };
  }

  /**
   * Refuses new writes, waits for operations in progress, commits everything, then closes the
   * cache (which stays on disk, warm for the next open). A failed final commit rejects and
   * leaves the volume open, so the caller may retry.
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    if (this.state === "closed") return RESOLVED;
    this.state = "closing";
    this.budget.wake(); // writes waiting for room are refused now
    this.closing = (async () => {
      try {
        this.disk.startHeldFills(); // the next open finds them cached
        while (this.active.size > 0) await Promise.allSettled([...this.active]);
        while (this.disk.dirtyCount > 0) await this.commits.cycle();
        await this.syncLocal();
        await this.commits.runningSettled();
        // What the last commits left running in the background (a manifest prune).
        while (this.active.size > 0) await Promise.allSettled([...this.active]);
      } catch (error) {
        if (this.state === "closing") this.state = "open"; // not when abandoned meanwhile
        throw error;
      } finally {
        this.closing = undefined;
      }
      if (this.state === "closing") this.shutDown(true);
    })();
    return this.closing;
  }

  /**
   * Drops the volume at once without flushing or committing, as in a crash: what reached the
   * cache files stays there for the next open. For a holder that has been fenced and for crash tests.
   */
  abandon(): void {
    this.shutDown(false);
  }

  private shutDown(clean: boolean): void {
    this.state = "closed";
    this.scheduler.stop();
    this.commits.stop();
    this.fetches.clear();
    this.budget.unregister(this);
    try {
      this.disk.close(clean);
    } finally {
      this.budget.wake();
      if (this.privateDir !== undefined) {
        this.budget.removeDormant(this.disk.dir);
        rmSync(this.privateDir, { recursive: true, force: true });
      }
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  private isAllocated(index: number): boolean {
    const entry = this.disk.get(index);
    return entry !== undefined ? !entry.hole : this.committed.has(index);
  }

  /** The last chunk is shorter when the size is not a multiple of the chunk size. */
  private chunkLength(index: number): number {
    return index === this.chunkCount - 1 ? this.size - index * this.chunkSize : this.chunkSize;
  }

  private refuse(offset: number, length: number, kind: "read" | "write"): StorageError | undefined {
    if (this.state === "closed" || (kind === "write" && this.state === "closing")) {
      return new StorageError("ESHUTDOWN", `volume ${this.volumeId} is ${this.state}`);
    }
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      return new StorageError("EINVAL", `invalid range ${offset}+${length}`);
    }
    if (offset + length > this.size) {
      // NBD: a write past the end is ENOSPC, any other request past the end EINVAL.
      return new StorageError(kind === "write" ? "ENOSPC" : "EINVAL", `range ${offset}+${length} is past the end (${this.size})`);
    }
    return undefined;
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.active.add(promise);
    const untrack = () => this.active.delete(promise);
    promise.then(untrack, untrack);
    return promise;
  }
}

/** What every volume offers, known without opening one (NBD_OPT_INFO answers from the row). */
export function volumeCapabilities(chunkSize: number): DeviceCapabilities {
  return {
    readOnly: false,
    canFlush: true,
    canTrim: true,
    canZero: true,
    canFastZero: true, // zeroing only drops chunks or writes cached files: never slower than writing
    canCache: true,
    canMultiConn: true, // one engine serves every connection, so all see the same bytes
    allocationUnit: chunkSize,
  };
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
