/**
 * A volume: `size` bytes split into fixed chunks, each chunk an immutable object generation in
 * the store, the chunk map (chunk -> generation) persisted through a ChunkIndex, and every chunk
 * in use held in a persistent local disk cache (src/cache/) that survives kill -9.
 *
 * Hot path: a read or write whose chunks are all cached is a positional readSync/writeSync on
 * the chunk file and returns an already-resolved promise. Misses fetch whole chunks from the
 * store (one fetch per chunk shared by concurrent callers); sequential readers trigger parallel
 * read-ahead, and cache() prefetches.
 *
 * FLUSH: `local` durability fsyncs the chunk files written since the last flush and the journal;
 * `cloud` commits a freeze taken at that flush and waits for it, and leaves the local disk
 * unsynced until close (the bucket holds what the flush promised; a cache found unsynced after a
 * reboot starts empty: cache/reboot-marker.ts).
 *
 * Commit cycle (one at a time per volume): *freeze* every dirty chunk (chunk -> version) at a
 * flush point; a write to a frozen chunk whose upload has not read it yet first copies the
 * frozen content aside, so the commit is exactly the volume at the freeze. Each frozen chunk is
 * uploaded as generation `epoch * 65536 + salt` through the ChunkUploader (all-zero chunks and
 * holes are not uploaded: they leave the map), unless write-behind already uploaded exactly that
 * content ahead of the commit (write-behind.ts), which the commit then names instead. Only when
 * every upload succeeded does one ChunkIndex commit move the map and epoch (with the superseded generations as garbage for GC);
 * then onCommitted; then chunks whose version did not move are journalled clean. A failing store
 * or index loses nothing: the chunks stay dirty and the commit loop retries with backoff.
 * When to commit: at a *commit point* the loop runs at once if nothing was written since the last
 * client flush, else at the next flush (so the bucket holds a flush's state). Commit points come
 * commitIdleMs after the last write (when set: a burst reaches the bucket soon after it ends) and
 * every commitIntervalMs while data is dirty (the bound under sustained writing, which the idle
 * rule never commits). If no flush comes within an interval after its commit point, the loop
 * commits by itself. It also runs at once when the gateway's dirty bytes pass half the dirty
 * limit; past the limit, writes wait.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { BlockDevice, DeviceCapabilities, Extent, WriteOptions, ZeroOptions } from "../block-device";
import { CacheBudget, type BudgetMember } from "../cache/cache-budget";
import type { FrozenChunk } from "../cache/cache-entry";
import { DiskCache } from "../cache/disk-cache";
import type { FillWriter } from "../cache/fill-writer";
import type { ChunkCommit, ChunkIndex, ChunkRef } from "../chunk-index";
import { StorageError, isStorageError } from "../errors";
import type { ObjectStore } from "../object-store/object-store";
import type { ChunkCodec } from "./chunk-codec";
import { uploadBuffers } from "./chunk-buffers";
import { ChunkStore } from "./chunk-store";
import { SequentialStreams } from "./sequential-streams";
import { GENERATIONS_PER_EPOCH } from "./chunk-layout";
import { WriteBehind, type UploadAhead } from "./write-behind";
import { copyBytes } from "../util/copy-bytes";

export type Durability = "local" | "cloud";

/** Uploads one frozen chunk; the gateway's implementation queues a job whose worker calls volume.uploadFrozenChunk. */
export interface ChunkUploader {
  upload(task: UploadTask): Promise<{ storedSize: number }>;
}

export interface UploadTask {
  volumeId: string;
  commitId: string;
  index: number;
  generation: number;
}

export interface CommittedMap {
  epoch: number;
  /** The whole chunk map after the commit (a private copy). */
  chunks: Map<number, ChunkRef>;
}

export interface VolumeOptions {
  volumeId: string;
  /** Bytes; need not be a multiple of the chunk size. */
  size: number;
  /** Bytes, a power of two between 512 B and 64 MiB. */
  chunkSize: number;
  store: ObjectStore;
  index: ChunkIndex;
  /** Transforms chunk bytes to object bodies (default: identity). */
  codec?: ChunkCodec;
  /**
   * Root of the gateway's disk cache; this volume uses `<cacheDir>/<volumeId>/`. Without it a
   * private temporary directory is used and removed at close (nothing survives a restart).
   */
  cacheDir?: string;
  /** Shared by every volume of a gateway. Without it, a private budget from cacheBytes/dirtyLimitBytes. */
  cacheBudget?: CacheBudget;
  /** Private budget only: cache target in bytes (default 256 MiB). */
  cacheBytes?: number;
  /** Private budget only: dirty bytes beyond which writes wait (default 64 MiB). */
  dirtyLimitBytes?: number;
  /** What FLUSH waits for (default "cloud": the commit). */
  durability?: Durability;
  /**
   * With dirty data, a commit follows within about this long, however busy the volume (default
   * 5000): at the next flush, or by itself one more interval later if no flush comes.
   */
  commitIntervalMs?: number;
  /**
   * Commit sooner once nothing was written, trimmed or zeroed for this long: at once if the last
   * flush came after the last write, else at the next flush (default: no idle rule, only the
   * interval). So a burst reaches the bucket soon after it ends, while sustained writing commits
   * once per interval.
   */
  commitIdleMs?: number;
  /** Default: uploads in-process, `uploadConcurrency` at a time. */
  uploader?: ChunkUploader;
  /** Called after each commit landed in the index (the gateway writes the manifest). Failures are logged. */
  onCommitted?: (committed: CommittedMap) => void | Promise<void>;
  /** The writer's fencing token mod 65536: generations are epoch * 65536 + salt (default 0). */
  generationSalt?: number;
  /** Uploads in flight at once, prefetches, and the downloads read-ahead may keep in flight (default 16). */
  uploadConcurrency?: number;
  /** Chunks fetched ahead of a sequential reader (default 8). */
  readAheadChunks?: number;
  /** Upload chunks a sequential writer finished before their commit (default true; see write-behind.ts). */
  writeBehind?: boolean;
  /** Tests: writes fetched chunks into their cache files (default: fs.write in the thread pool). */
  fillWriter?: FillWriter;
  /** Tests: this boot's id, to play a reboot (default: the kernel's; see cache/reboot-marker.ts). */
  bootId?: string | null;
  logger?: VolumeLogger;
}

/** The subset of a pino logger the engine uses. */
export interface VolumeLogger {
  debug(details: object, message?: string): void;
  warn(details: object, message?: string): void;
}

export interface VolumeStats {
  /** The volume's size. */
  logicalBytes: number;
  /** Sum of the stored sizes of the committed chunk objects. */
  storedBytes: number;
  /** Plain bytes of the committed chunks / their stored bytes (1 when nothing is stored). */
  compressionRatio: number;
  /** Bytes of chunks written since the last commit. */
  dirtyBytes: number;
  /** Committed chunk objects. */
  chunksStored: number;
  /** The chunk map's current epoch: grows with every commit (by more than one when write-behind or a failed attempt used epochs). */
  epoch: number;
  /** Bytes of chunk files in the local cache (clean and dirty). */
  cachedBytes: number;
  /** Uploads of the running commit not finished yet. */
  queueDepth: number;
  /** When the last commit landed (ms since the Unix epoch), if any did since open. */
  lastCommitAt: number | undefined;
}

interface RunningCommit {
  id: string;
  epoch: number;
  generation: number;
  frozen: Map<number, FrozenChunk>;
  /** Content read for upload, kept until the upload succeeds so a retried upload sends the same bytes. */
  content: Map<number, Buffer | null>;
  /** Uploads running now: a second call for the same chunk joins it (its content buffer has one user). */
  running: Map<number, Promise<{ storedSize: number }>>;
  /** Claimed uploads ahead that failed, by task id, while the ChunkUploader retries them. */
  retriedAhead: Map<string, UploadAhead>;
}

const MIN_CHUNK_SIZE = 512;
const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
/** BLOCK_STATUS answers cover at most this many chunks; clients ask again for the rest. */
const MAX_STATUS_CHUNKS = 65_536;
const RESOLVED: Promise<void> = Promise.resolve();
const ZEROS = Buffer.alloc(64 * 1024);

export class Volume implements BlockDevice, BudgetMember {
  readonly volumeId: string;
  readonly size: number;
  readonly chunkSize: number;
  readonly capabilities: DeviceCapabilities;
  readonly durability: Durability;

  private readonly index: ChunkIndex;
  private readonly chunks: ChunkStore;
  private readonly disk: DiskCache;
  private readonly budget: CacheBudget;
  private readonly privateDir: string | undefined;
  private readonly logger: VolumeLogger | undefined;
  private readonly concurrency: number;
  private readonly readAheadChunks: number;
  private readonly chunkCount: number;
  private readonly commitIntervalMs: number;
  private readonly commitIdleMs: number | undefined;
  private readonly salt: number;
  private readonly uploader: ChunkUploader;
  private readonly onCommitted: VolumeOptions["onCommitted"];

  /** Committed chunk map as of `epoch`. */
  private readonly committed: Map<number, ChunkRef>;
  private epoch: number;
  private storedBytes = 0;
  private plainStoredBytes = 0;
  private lastCommitAt: number | undefined;

  /** In-flight fetches, one per chunk, tagged with the generation they fetch. */
  private readonly loading = new Map<number, { generation: number; promise: Promise<Buffer | undefined> }>();
  private readonly readStreams = new SequentialStreams();
  private readonly writeBehind: WriteBehind;

  /** Local flushes are serialised: a later one must not return before an earlier one's fsyncs. */
  private syncTail: Promise<void> = RESOLVED;
  private queuedSync: Promise<void> | undefined;
  /** Commit cycles: the running one and one queued behind it (shared by callers meanwhile). */
  private runningCycle: Promise<void> | undefined;
  private queuedCycle: Promise<void> | undefined;
  private current: RunningCommit | undefined;
  private commitSerial = 0;
  private pendingUploads = 0;
  /** Modifications so far, and their count at the last flush call: equal = nothing unflushed. */
  private modifications = 0;
  private flushedModifications = 0;
  private commitTimer: NodeJS.Timeout | undefined;
  /** The one idle timer: armed by a modification, re-armed while modifications keep coming. */
  private idleTimer: NodeJS.Timeout | undefined;
  /** `modifications` when the idle timer was armed: unchanged when it fires = a quiet spell. */
  private modificationsAtIdleArm = 0;
  /** A commit point passed with unflushed writes: the next flush freezes for a commit. */
  private commitDue = false;
  /** The interval passed with unflushed writes: unless a flush commits first, its next tick does. */
  private commitOverdue = false;
  private commitRequested = false;
  private commitLoop: Promise<void> | undefined;
  private retryTimer: { timer: NodeJS.Timeout; wake: () => void } | undefined;

  /** Slow-path operations still running (close waits for them before its final commit). */
  private readonly active = new Set<Promise<unknown>>();
  private state: "open" | "closing" | "closed" = "open";
  private closing: Promise<void> | undefined;

  private constructor(options: VolumeOptions, snapshot: { epoch: number; chunks: Map<number, ChunkRef> }, budget: CacheBudget, dir: string, privateDir: string | undefined) {
    this.volumeId = options.volumeId;
    this.size = options.size;
    this.chunkSize = options.chunkSize;
    this.durability = options.durability ?? "cloud";
    this.index = options.index;
    this.chunks = new ChunkStore({ store: options.store, volumeId: options.volumeId, codec: options.codec });
    this.logger = options.logger;
    this.concurrency = Math.max(1, options.uploadConcurrency ?? 16);
    this.readAheadChunks = Math.max(0, options.readAheadChunks ?? 8);
    this.chunkCount = Math.ceil(this.size / this.chunkSize);
    this.commitIntervalMs = Math.max(1, options.commitIntervalMs ?? 5_000);
    this.commitIdleMs = options.commitIdleMs === undefined ? undefined : Math.max(1, options.commitIdleMs);
    this.salt = options.generationSalt ?? 0;
    this.uploader = options.uploader ?? { upload: (task) => this.uploadFrozenChunk(task.commitId, task.index, task.generation) };
    this.onCommitted = options.onCommitted;
    this.committed = new Map(snapshot.chunks);
    this.epoch = snapshot.epoch;
    for (const [index, ref] of this.committed) {
      this.storedBytes += ref.storedSize;
      this.plainStoredBytes += this.chunkLength(index);
    }
    this.writeBehind = new WriteBehind({
      volumeId: this.volumeId,
      size: this.size,
      chunkSize: this.chunkSize,
      salt: this.salt,
      committedEpoch: this.epoch,
      concurrency: this.concurrency,
      enabled: options.writeBehind ?? true,
      host: {
        // In-process, not a queued job: see write-behind.ts (a failure is retried by the commit, as a job).
        upload: (record) => this.runUploadAhead(record),
        isDirtyData: (index) => {
          const entry = this.disk.get(index);
          return entry !== undefined && entry.dirty && !entry.hole;
        },
        accepting: () => this.state === "open",
        failed: (error, record) => {
          if (this.state !== "closed") this.logger?.warn({ err: error, volumeId: this.volumeId, chunk: record.index }, "upload ahead of a commit failed; the commit uploads the chunk");
        },
      },
    });
    this.budget = budget;
    this.privateDir = privateDir;
    this.disk = DiskCache.open(
      {
        dir,
        budget,
        chunkCount: this.chunkCount,
        chunkLength: (index) => this.chunkLength(index),
        fillWriter: options.fillWriter,
        // A cloud flush's promise is kept by the bucket: the cache is synced only at close.
        lazySync: this.durability === "cloud",
        // Its writes wait for the bucket, not the disk: large ones skip the page cache (direct-pieces.ts).
        directWrites: this.durability === "cloud",
        bootId: options.bootId,
      },
      (index, generation) => this.committed.get(index)?.generation === generation,
    );
    if (this.disk.discardedAfterReboot) {
      this.logger?.warn({ volumeId: this.volumeId }, "the cache was not synced before a reboot: it starts empty, and reads come from the bucket again");
    }
    budget.register(this);
    this.capabilities = {
      readOnly: false,
      canFlush: true,
      canTrim: true,
      canZero: true,
      canFastZero: true, // zeroing only drops chunks or writes cached files: never slower than writing
      canCache: true,
      canMultiConn: true, // one engine serves every connection, so all see the same bytes
      allocationUnit: this.chunkSize,
    };
    if (this.disk.dirtyCount > 0) {
      // Dirty chunks from before a restart: commit them at once.
      this.logger?.debug({ volumeId: this.volumeId, dirtyChunks: this.disk.dirtyCount }, "re-queued dirty chunks from the cache");
      this.requestCommit();
    }
  }

  /** Loads the chunk map, replays the disk cache and returns the open volume. */
  static async open(options: VolumeOptions): Promise<Volume> {
    const { size, chunkSize } = options;
    if (!Number.isSafeInteger(size) || size <= 0) throw new StorageError("EINVAL", `invalid volume size ${size}`);
    if (!Number.isSafeInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE || (chunkSize & (chunkSize - 1)) !== 0) {
      throw new StorageError("EINVAL", `chunk size ${chunkSize} is not a power of two between ${MIN_CHUNK_SIZE} and ${MAX_CHUNK_SIZE}`);
    }
    const salt = options.generationSalt ?? 0;
    if (!Number.isInteger(salt) || salt < 0 || salt >= GENERATIONS_PER_EPOCH) {
      throw new StorageError("EINVAL", `generation salt ${salt} is not between 0 and ${GENERATIONS_PER_EPOCH - 1}`);
    }
    if (options.volumeId.length === 0 || /[/\\]/.test(options.volumeId) || options.volumeId.startsWith(".")) {
      throw new StorageError("EINVAL", `invalid volume id ${JSON.stringify(options.volumeId)}`);
    }
    let snapshot;
    try {
      snapshot = await options.index.load();
    } catch (error) {
      throw asEio(error, "loading the chunk map");
    }
    const chunkCount = Math.ceil(size / chunkSize);
    for (const index of snapshot.chunks.keys()) {
      if (!Number.isSafeInteger(index) || index < 0 || index >= chunkCount) {
        throw new StorageError("EIO", `chunk map of ${options.volumeId} names chunk ${index}, past the end (${chunkCount} chunks)`);
      }
    }
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

  // ---- reads -------------------------------------------------------------------------------

  read(offset: number, target: Uint8Array): Promise<void> {
    const refused = this.refuse(offset, target.length, "read");
    if (refused) return Promise.reject(refused);
    let misses: Promise<void>[] | undefined;
    const end = offset + target.length;
    try {
      for (let position = offset; position < end; ) {
        const index = Math.floor(position / this.chunkSize);
        const within = position - index * this.chunkSize;
        const length = Math.min(this.chunkSize - within, end - position);
        const targetOffset = position - offset;
        if (!this.copyOut(index, within, target, targetOffset, length)) {
          (misses ??= []).push(this.readMiss(index, within, target, targetOffset, length));
        }
        position += length;
      }
    } catch (error) {
      return Promise.reject(error);
    }
    this.noteRead(offset, end);
    return misses === undefined ? RESOLVED : this.track(Promise.all(misses).then(() => undefined));
  }

  readNow(offset: number, target: Uint8Array): boolean {
    if (this.refuse(offset, target.length, "read") !== undefined) return false; // read() reports it
    const end = offset + target.length;
    for (let position = offset; position < end; ) {
      const index = Math.floor(position / this.chunkSize);
      const within = position - index * this.chunkSize;
      const length = Math.min(this.chunkSize - within, end - position);
      if (!this.copyOut(index, within, target, position - offset, length, false)) return false;
      position += length;
    }
    this.noteRead(offset, end);
    return true;
  }

  /**
   * Copies from the cache, a fill on its way there, or zeros for a hole; false when the store must be
   * asked, or for a hole when `holes` is false (readNow leaves holes to read(), which reports them).
   */
  private copyOut(index: number, within: number, target: Uint8Array, targetOffset: number, length: number, holes = true): boolean {
    const entry = this.disk.get(index);
    if (entry !== undefined) {
      if ((entry.hole && !holes) || entry.cold) return false; // a cold one is warmed first (readMiss)
      this.disk.readInto(entry, within, target, targetOffset, length);
      return true;
    }
    const filling = this.disk.filling(index);
    if (filling !== undefined) {
      copyBytes(filling, target, targetOffset, within, within + length);
      return true;
    }
    if (!this.committed.has(index) && holes) {
      target.fill(0, targetOffset, targetOffset + length);
      return true;
    }
    return false;
  }

  private async readMiss(index: number, within: number, target: Uint8Array, targetOffset: number, length: number): Promise<void> {
    for (;;) {
      if (this.copyOut(index, within, target, targetOffset, length)) return;
      const cold = this.disk.get(index);
      if (cold?.cold) {
        await this.disk.warm(cold);
        if (this.state === "closed") throw new StorageError("ESHUTDOWN", `volume ${this.volumeId} is closed`);
        continue;
      }
      const generation = this.committed.get(index)!.generation;
      const data = await this.fetchChunk(index, generation);
      // The cache may have moved on while we waited (a write, a commit): it is at least as new.
      if (this.copyOut(index, within, target, targetOffset, length)) return;
      if (data !== undefined && this.committed.get(index)?.generation === generation) {
        copyBytes(data, target, targetOffset, within, within + length);
        return;
      }
    }
  }

  /** Sequential readers, each of several interleaved ones: fetch its next chunks ahead, in parallel, once two reads follow each other. */
  private noteRead(offset: number, end: number): void {
    if (this.readAheadChunks === 0) return;
    const stream = this.readStreams.note(offset, end, 2);
    if (stream === undefined) return;
    const next = Math.floor((end - 1) / this.chunkSize) + 1;
    const last = Math.min(this.chunkCount - 1, next + this.readAheadChunks - 1);
    if (last <= stream.aheadUntil) return;
    for (let index = Math.max(next, stream.aheadUntil + 1); index <= last; index++) {
      if (this.loading.size >= this.concurrency) {
        // Enough downloads in flight (as many as uploads may run): this reader's next read goes on from here.
        stream.aheadUntil = index - 1;
        return;
      }
      const ref = this.committed.get(index);
      const cached = this.disk.get(index);
      // A cached chunk that is cold (after a restart, or a direct fill) is warmed ahead instead of fetched.
      if (cached?.cold) void this.disk.warm(cached);
      if (ref === undefined || cached !== undefined || this.disk.filling(index) !== undefined || this.loading.has(index)) continue;
      this.fetchChunk(index, ref.generation).catch((error: unknown) => {
        this.logger?.debug({ err: error, volumeId: this.volumeId, index }, "read-ahead failed");
      });
    }
    stream.aheadUntil = last;
  }

  /**
   * Fetches one generation of a chunk, sharing the request with concurrent callers. The result
   * enters the cache (clean, written in the background: close waits for it) only if it is still
   * the current, un-rewritten content. Resolves undefined when the object vanished because a
   * commit superseded it meanwhile.
   *
   * The bytes are reused memory (see recycleFetched): whoever awaits this reads them at once, never
   * after a later await.
   */
  private fetchChunk(index: number, generation: number): Promise<Buffer | undefined> {
    const inflight = this.loading.get(index);
    if (inflight !== undefined && inflight.generation === generation) return inflight.promise;
    const promise = this.chunks.load(index, generation, this.chunkLength(index)).then((data) => {
      const current = this.committed.get(index)?.generation === generation;
      if (data === undefined) {
        if (current) throw new StorageError("EIO", `chunk ${index} generation ${generation} of ${this.volumeId} is missing from the store`);
        return undefined;
      }
      if (current && this.state !== "closed" && this.disk.get(index) === undefined && this.disk.fillClean(index, generation, data)) {
        const settled = this.disk.fillSettled(index);
        void this.track(settled);
        void settled.then(() => this.chunks.recycle(data));
      } else {
        this.recycleFetched(data);
      }
      return data;
    });
    const entry = { generation, promise };
    this.loading.set(index, entry);
    const forget = () => {
      if (this.loading.get(index) === entry) this.loading.delete(index);
    };
    promise.then(forget, forget);
    return promise;
  }

  /**
   * The fetched bytes go back to the chunk store for the next download once every reader awaiting
   * the fetch has copied them: those continuations all run as microtasks right after the fetch
   * resolves, so before the next turn of the event loop. A fill keeps its bytes until its file is
   * written (fetchChunk recycles them then).
   */
  private recycleFetched(data: Buffer): void {
    setImmediate(() => this.chunks.recycle(data));
  }

  // ---- writes, trims, zeroes ---------------------------------------------------------------

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    const refused = this.refuse(offset, data.length, "write");
    if (refused) return Promise.reject(refused);
    const source = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return this.change(offset, data.length, source, options);
  }

  writeNow(offset: number, data: Uint8Array): boolean {
    if (this.refuse(offset, data.length, "write") !== undefined || !this.budget.hasDirtyRoom()) return false;
    const end = offset + data.length;
    for (let position = offset; position < end; ) {
      const index = Math.floor(position / this.chunkSize);
      const within = position - index * this.chunkSize;
      const length = Math.min(this.chunkSize - within, end - position);
      if (this.disk.needsContent(index, within, length, this.committed.has(index))) return false;
      position += length;
    }
    const source = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (this.modify(offset, data.length, source) !== undefined) {
      throw new StorageError("EIO", `write at ${offset} of ${this.volumeId} needed a fetch after all`); // a bug: DiskCache.write asks needsContent too
    }
    return true;
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    const refused = this.refuse(offset, length, "write");
    if (refused) return Promise.reject(refused);
    return this.change(offset, length, null, options);
  }

  /** Whole chunks become holes (cheap), so FAST_ZERO is honoured; NO_HOLE may still leave a hole: it reads as zeros either way. */
  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    const refused = this.refuse(offset, length, "write");
    if (refused) return Promise.reject(refused);
    return this.change(offset, length, null, options);
  }

  private change(offset: number, length: number, source: Buffer | null, options: WriteOptions | undefined): Promise<void> {
    if (!this.budget.hasDirtyRoom()) return this.track(this.afterRoom(offset, length, source, options));
    let pending: Promise<void> | undefined;
    try {
      pending = this.modify(offset, length, source);
    } catch (error) {
      return Promise.reject(error);
    }
    if (options?.fua) return this.track((pending ?? RESOLVED).then(() => this.flush()));
    return pending === undefined ? RESOLVED : this.track(pending);
  }

  private async afterRoom(offset: number, length: number, source: Buffer | null, options: WriteOptions | undefined): Promise<void> {
    await this.budget.waitForDirtyRoom(() => {
      if (this.state !== "open") throw new StorageError("ESHUTDOWN", `volume ${this.volumeId} is ${this.state}`);
    });
    await this.modify(offset, length, source);
    if (options?.fua) await this.flush();
  }

  /**
   * Applies `source` (or zeros when null) to `length` bytes at `offset`. Returns undefined when
   * done synchronously, else a promise for the chunks that first had to be fetched.
   */
  private modify(offset: number, length: number, source: Buffer | null): Promise<void> | undefined {
    this.modifications++;
    if (this.commitTimer === undefined) this.armCommitTimer();
    if (this.idleTimer === undefined && this.commitIdleMs !== undefined) this.armIdleTimer(this.commitIdleMs);
    let misses: Promise<void>[] | undefined;
    const end = offset + length;
    for (let position = offset; position < end; ) {
      const index = Math.floor(position / this.chunkSize);
      const within = position - index * this.chunkSize;
      const pieceLength = Math.min(this.chunkSize - within, end - position);
      const sourceOffset = position - offset;
      const committed = this.committed.has(index);
      if (source === null && within === 0 && pieceLength === this.chunkLength(index)) {
        this.disk.punchHole(index, committed);
      } else if (!this.disk.write(index, within, pieceLength, source, sourceOffset, committed)) {
        (misses ??= []).push(this.patchAfterFetch(index, within, pieceLength, source, sourceOffset));
      }
      position += pieceLength;
    }
    if (source !== null) this.writeBehind.noteWrite(offset, end);
    return misses === undefined ? undefined : Promise.all(misses).then(() => undefined);
  }

  private async patchAfterFetch(index: number, within: number, length: number, source: Buffer | null, sourceOffset: number): Promise<void> {
    for (;;) {
      if (this.disk.write(index, within, length, source, sourceOffset, this.committed.has(index))) return;
      const generation = this.committed.get(index)!.generation;
      // A fill in flight holds the current content: no need to fetch it again.
      const fetched = this.disk.filling(index) ?? (await this.fetchChunk(index, generation));
      if (this.state === "closed") throw new StorageError("ESHUTDOWN", `volume ${this.volumeId} is closed`);
      if (this.disk.write(index, within, length, source, sourceOffset, this.committed.has(index))) return;
      if (fetched !== undefined && this.committed.get(index)?.generation === generation) {
        // The cache could not keep it clean (tiny target, or full): take it in as dirty.
        this.disk.adoptFetched(index, fetched);
      }
    }
  }

  // ---- FLUSH ---------------------------------------------------------------------------------

  flush(): Promise<void> {
    if (this.state === "closed") return Promise.reject(new StorageError("ESHUTDOWN", `volume ${this.volumeId} is closed`));
    this.flushedModifications = this.modifications;
    let cycle: Promise<void> | undefined;
    if ((this.durability === "cloud" || this.commitDue) && this.disk.dirtyCount > 0) {
      this.commitDue = false;
      this.commitOverdue = false;
      cycle = this.commitCycle(); // freezes now, at this flush, unless a cycle is running
    }
    // A failed commit is retried in the background either way; a cloud flush also reports it.
    cycle?.catch((error: unknown) => this.commitFailed(error));
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
    const cycle = this.commitCycle();
    cycle.catch((error: unknown) => this.commitFailed(error));
    return this.track(cycle);
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

  // ---- commits -------------------------------------------------------------------------------

  /** BudgetMember: dirty bytes passed half the gateway's limit (or dirty chunks after a restart). */
  requestCommit(): void {
    this.commitRequested = true;
    if (this.commitLoop !== undefined || this.state !== "open") {
      this.retryTimer?.wake();
      return;
    }
    // Deferred: never freeze in the middle of the write that crossed the threshold.
    this.commitLoop = new Promise<void>((resolve) => queueMicrotask(resolve))
      .then(() => this.runCommitLoop())
      .finally(() => {
        this.commitLoop = undefined;
      });
  }

  get dirtyBytes(): number {
    return this.disk.dirtyBytes;
  }

  private async runCommitLoop(): Promise<void> {
    let delayMs = 50;
    while (this.commitRequested && this.state === "open" && this.disk.dirtyCount > 0) {
      this.commitRequested = false;
      try {
        await this.commitCycle();
        delayMs = 50;
        if (this.budget.dirtyBytes > this.budget.dirtyLimitBytes / 2 && this.disk.dirtyCount > 0) this.commitRequested = true;
      } catch (error) {
        this.logger?.warn({ err: error, volumeId: this.volumeId, retryInMs: delayMs }, "commit failed; retrying");
        this.commitRequested = true;
        this.budget.wake();
        await this.sleep(delayMs);
        delayMs = Math.min(delayMs * 2, 5_000);
      }
      this.budget.wake();
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.retryTimer = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.retryTimer = { timer, wake };
    });
  }

  private commitFailed(error: unknown): void {
    this.logger?.warn({ err: error, volumeId: this.volumeId }, "commit failed; retrying in the background");
    this.requestCommit();
  }

  /** Commits within the interval: at the next flush if writes came since the last one, else now. */
  private armCommitTimer(): void {
    if (this.state !== "open") return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      if (this.state !== "open" || this.disk.dirtyCount === 0) return;
      if (this.commitOverdue) this.commitNow(); // no flush came within a whole interval
      else this.commitPoint(true);
      this.armCommitTimer();
    }, this.commitIntervalMs);
    this.commitTimer.unref();
  }

  /**
   * A commit point once nothing was modified for commitIdleMs. No timer and no clock read per
   * write: one timer that, when it fires, looks whether modifications came since it was armed
   * (then it waits another idleMs), so a quiet spell is noticed within one to two idleMs. After
   * its decision it waits for the next modification to arm it again.
   */
  private armIdleTimer(idleMs: number): void {
    if (this.state !== "open") return;
    this.modificationsAtIdleArm = this.modifications;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.state !== "open") return;
      if (this.modifications !== this.modificationsAtIdleArm) this.armIdleTimer(idleMs); // still writing
      else if (this.disk.dirtyCount > 0) this.commitPoint(false);
    }, idleMs);
    this.idleTimer.unref();
  }

  /**
   * Commits now when nothing is unflushed (the state is a flush's), else at the next flush. A
   * point from the interval also arms its fallback: the next tick commits if no flush did by then
   * (an idle point does not, so it never shortens the time a flush has to come).
   */
  private commitPoint(fromInterval: boolean): void {
    if (this.modifications === this.flushedModifications) {
      this.commitNow();
    } else {
      this.commitDue = true;
      if (fromInterval) this.commitOverdue = true;
    }
  }

  private commitNow(): void {
    this.commitDue = false;
    this.commitOverdue = false;
    this.requestCommit();
  }

  /**
   * The next commit cycle whose freeze is taken at or after this call: started now (freezing
   * synchronously) when none runs, else queued behind the running one and shared.
   */
  private commitCycle(): Promise<void> {
    if (this.queuedCycle !== undefined) return this.queuedCycle;
    if (this.runningCycle === undefined) return this.startCycle();
    const queued = this.runningCycle.catch(() => {}).then(() => {
      this.queuedCycle = undefined;
      if (this.state === "closed") throw new StorageError("ESHUTDOWN", `volume ${this.volumeId} is closed`);
      return this.startCycle();
    });
    this.queuedCycle = queued;
    return queued;
  }

  private startCycle(): Promise<void> {
    const frozen = this.disk.freezeDirty();
    const run = this.runCommit(frozen).finally(() => {
      if (this.runningCycle === run) this.runningCycle = undefined;
    });
    this.runningCycle = run;
    return run;
  }

  private async runCommit(frozenList: FrozenChunk[]): Promise<void> {
    if (frozenList.length === 0) return;
    const previousEpoch = this.epoch;
    const frozenByIndex = new Map(frozenList.map((frozen) => [frozen.index, frozen]));
    const { epoch, claimed, stale } = this.writeBehind.takeForCommit(previousEpoch, frozenByIndex);
    // Uploads ahead of content written over since: their objects go once they settle (nothing claims them).
    if (stale.length > 0) void this.track(this.deleteUploadsAhead(stale));
    const generation = epoch * GENERATIONS_PER_EPOCH + this.salt;
    const commit: RunningCommit = {
      id: `${this.volumeId}:${epoch}:${++this.commitSerial}`,
      epoch,
      generation,
      frozen: frozenByIndex,
      content: new Map(),
      running: new Map(),
      retriedAhead: new Map(),
    };
    this.current = commit;
    const releaseAll = () => {
      for (const frozen of frozenList) this.disk.release(frozen);
    };
    const uploads = frozenList.filter((frozen) => !frozen.hole && !claimed.has(frozen.index));
    const startedAt = performance.now();
    /** index -> the object the commit references (storedSize 0: no object, the chunk leaves the map). */
    const stored = new Map<number, ChunkRef>();
    this.pendingUploads = uploads.length + claimed.size;
    const uploadFresh = async (frozen: FrozenChunk) => {
      const { storedSize } = await this.uploader.upload({ volumeId: this.volumeId, commitId: commit.id, index: frozen.index, generation });
      stored.set(frozen.index, { generation, storedSize });
      this.pendingUploads--;
    };
    const awaitClaimed = async ([index, record]: [number, UploadAhead]) => {
      const storedSize = await record.result;
      if (storedSize !== undefined) {
        stored.set(index, { generation: record.generation, storedSize });
        this.pendingUploads--;
        return;
      }
      // It failed (the store's own retries gave up): now as a queued job, retried with backoff like the
      // commit's own uploads. Same key, same bytes as any attempt of it that may still land: the frozen content.
      commit.retriedAhead.set(record.id, record);
      const { storedSize: size } = await this.uploader
        .upload({ volumeId: this.volumeId, commitId: record.id, index, generation: record.generation })
        .finally(() => commit.retriedAhead.delete(record.id));
      stored.set(index, { generation: record.generation, storedSize: size });
      this.pendingUploads--;
    };
    try {
      // Both run to the end before a failure counts, so every object stored is known for the cleanup.
      const outcomes = await Promise.allSettled([runLimited(uploads, this.concurrency, uploadFresh), runLimited([...claimed], claimed.size, awaitClaimed)]);
      for (const outcome of outcomes) if (outcome.status === "rejected") throw outcome.reason;
    } catch (error) {
      releaseAll();
      this.pendingUploads = 0;
      if (this.current === commit) this.current = undefined;
      // Nothing was committed: the chunks stay dirty and these uploads are unreferenced.
      if (this.state === "closed") throw asEio(error, `commit of ${this.volumeId}`); // abandoned: touch nothing
      const orphans = [...stored].filter(([, ref]) => ref.storedSize > 0).map(([index, ref]) => [index, ref.generation] as const);
      await this.chunks.deleteGenerations(orphans).catch((cleanupError: unknown) => {
        this.logger?.warn({ err: cleanupError, volumeId: this.volumeId }, "could not delete uploads of a failed commit");
      });
      throw asEio(error, `commit of ${this.volumeId}`);
    }
    if (this.current === commit) this.current = undefined;
    const uploadedAt = performance.now();

    const set: Array<[number, ChunkRef]> = [];
    const remove: number[] = [];
    const garbage: Array<[number, number]> = [];
    for (const frozen of frozenList) {
      const previous = this.committed.get(frozen.index);
      const ref = stored.get(frozen.index);
      if (ref !== undefined && ref.storedSize > 0) set.push([frozen.index, ref]);
      else if (previous !== undefined) remove.push(frozen.index);
      if (previous !== undefined) garbage.push([frozen.index, previous.generation]);
    }
    if (set.length === 0 && remove.length === 0 && claimed.size === 0 && stale.length === 0) this.writeBehind.returnEpoch(epoch);
    if (set.length > 0 || remove.length > 0) {
      try {
        await this.commitToIndex({ previousEpoch, epoch, set, remove, garbage });
      } catch (error) {
        releaseAll();
        throw error;
      }
      if (this.state === "closed") return; // abandoned meanwhile: touch nothing
      for (const [index, ref] of set) {
        this.forgetCommitted(index);
        this.committed.set(index, ref);
        this.storedBytes += ref.storedSize;
        this.plainStoredBytes += this.chunkLength(index);
      }
      for (const index of remove) this.forgetCommitted(index);
      this.epoch = epoch;
      this.lastCommitAt = Date.now();
      if (this.onCommitted !== undefined) {
        try {
          await this.onCommitted({ epoch, chunks: new Map(this.committed) });
        } catch (error) {
          this.logger?.warn({ err: error, volumeId: this.volumeId, epoch }, "after-commit hook failed");
        }
      }
    }
    if (this.state === "closed") return;
    const committedGenerations = new Map(set.map(([index, ref]) => [index, ref.generation]));
    for (const frozen of frozenList) this.disk.settle(frozen, committedGenerations.get(frozen.index));
    this.disk.compactIfLarge();
    this.budget.evictToTarget();
    this.budget.wake();
    this.logger?.debug(
      {
        volumeId: this.volumeId,
        epoch: this.epoch,
        uploaded: set.length,
        uploadedAhead: claimed.size,
        removed: remove.length,
        uploadMs: Math.round(uploadedAt - startedAt),
        indexMs: Math.round(performance.now() - uploadedAt),
      },
      "committed",
    );
  }

  private forgetCommitted(index: number): void {
    const previous = this.committed.get(index);
    if (previous === undefined) return;
    this.storedBytes -= previous.storedSize;
    this.plainStoredBytes -= this.chunkLength(index);
    this.committed.delete(index);
  }

  /**
   * Called by the ChunkUploader (in-process, or a queue worker) for each frozen chunk: reads the
   * frozen content (synchronously, so atomically with respect to writes), encodes and stores it.
   * All-zero content is not stored: `storedSize` 0 means "no object" (the chunk leaves the map).
   * Throws ENOTFOUND when that commit is no longer running.
   */
  async uploadFrozenChunk(commitId: string, index: number, generation: number): Promise<{ storedSize: number }> {
    const ahead = this.current?.retriedAhead.get(commitId);
    if (ahead !== undefined && ahead.index === index && ahead.generation === generation && this.state !== "closed") return this.runUploadAhead(ahead);
    const commit = this.current;
    const frozen = commit?.frozen.get(index);
    if (commit === undefined || commit.id !== commitId || commit.generation !== generation || frozen === undefined || this.state === "closed") {
      throw new StorageError("ENOTFOUND", `commit ${commitId} of ${this.volumeId} has no upload of chunk ${index} generation ${generation} pending`);
    }
    const running = commit.running.get(index);
    if (running !== undefined) return running;
    const upload = this.uploadContent(commit, frozen).finally(() => commit.running.delete(index));
    commit.running.set(index, upload);
    return upload;
  }

  private async uploadContent(commit: RunningCommit, frozen: FrozenChunk): Promise<{ storedSize: number }> {
    const index = frozen.index;
    let content = commit.content.get(index);
    if (content === undefined) {
      const data = this.disk.readFrozen(frozen, (length) => uploadBuffers.acquire(length));
      content = data === null || isAllZero(data) ? null : data;
      if (content === null) uploadBuffers.release(data);
      commit.content.set(index, content);
    }
    if (content === null) return { storedSize: 0 };
    const storedSize = await this.chunks.save(index, commit.generation, content);
    // Uploaded: nothing reads this content any more (a failed upload keeps it for the retry; a commit
    // that fails as a whole leaves its buffers to the garbage collector).
    commit.content.delete(index);
    uploadBuffers.release(content);
    return { storedSize };
  }

  /**
   * An upload ahead of the commit (write-behind.ts): reads the chunk's current content and version
   * (or, when a freeze came first, the frozen content), encodes and stores it under its own generation.
   */
  private runUploadAhead(record: UploadAhead): Promise<{ storedSize: number }> {
    record.running ??= this.uploadAhead(record).finally(() => (record.running = undefined));
    return record.running;
  }

  private async uploadAhead(record: UploadAhead): Promise<{ storedSize: number }> {
    if (record.storedSize !== undefined) return { storedSize: record.storedSize }; // done: a late call changes nothing
    if (record.content === undefined) {
      // Given up before it read: a commit that failed released the frozen content, or the chunk is no longer data.
      if (record.cancelled || record.frozen?.released) return { storedSize: 0 };
      const allocate = (length: number) => uploadBuffers.acquire(length);
      let data: Buffer | null;
      if (record.frozen !== undefined) {
        data = this.disk.readFrozen(record.frozen, allocate);
        record.version = record.frozen.version;
      } else {
        const current = this.disk.readDirty(record.index, allocate);
        data = current?.data ?? null;
        record.version = current?.version ?? -1; // not dirty any more: matches no freeze
      }
      record.content = data === null || isAllZero(data) ? null : data;
      if (record.content === null && data !== null) uploadBuffers.release(data);
    }
    if (record.content === null) return { storedSize: (record.storedSize = 0) };
    const storedSize = await this.chunks.save(record.index, record.generation, record.content);
    uploadBuffers.release(record.content);
    record.content = undefined;
    record.storedSize = storedSize;
    return { storedSize };
  }

  /** Deletes the objects of uploads ahead that no commit claimed, once each has settled. */
  private async deleteUploadsAhead(records: readonly UploadAhead[]): Promise<void> {
    const sizes = await Promise.all(records.map((record) => record.result));
    const doomed = records.filter((_, i) => (sizes[i] ?? 0) > 0).map((record) => [record.index, record.generation] as const);
    if (doomed.length === 0 || this.state === "closed") return;
    await this.chunks.deleteGenerations(doomed).catch((error: unknown) => {
      this.logger?.warn({ err: error, volumeId: this.volumeId }, "could not delete uploads ahead that were written over (the GC will)");
    });
  }

  /**
   * Commits through the index. When the commit fails, the index is asked what it holds: a
   * commit whose answer was lost (connection dropped after the transaction) counts as done.
   */
  private async commitToIndex(commit: ChunkCommit): Promise<void> {
    try {
      await this.index.commit(commit);
    } catch (error) {
      const landed = await this.index.load().then(
        (snapshot) =>
          snapshot.epoch === commit.epoch &&
          commit.set.every(([index, ref]) => snapshot.chunks.get(index)?.generation === ref.generation) &&
          commit.remove.every((index) => !snapshot.chunks.has(index)),
        () => false,
      );
      if (!landed) throw asEio(error, `commit of epoch ${commit.epoch} of ${this.volumeId}`);
      this.logger?.warn({ err: error, volumeId: this.volumeId, epoch: commit.epoch }, "commit reported failure but landed");
    }
  }

  // ---- status, prefetch, lifecycle ------------------------------------------------------------

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    const refused = this.refuse(offset, Math.max(length, 1), "read");
    if (refused) throw refused;
    const firstChunk = Math.floor(offset / this.chunkSize);
    const end = Math.min(offset + Math.max(length, 1), this.size, (firstChunk + MAX_STATUS_CHUNKS) * this.chunkSize);
    const extents: Extent[] = [];
    for (let position = offset; position < end; ) {
      const index = Math.floor(position / this.chunkSize);
      const next = Math.min((index + 1) * this.chunkSize, end);
      const hole = !this.isAllocated(index);
      const last = extents.at(-1);
      if (last !== undefined && last.hole === hole) last.length += next - position;
      else extents.push({ length: next - position, hole, zero: hole });
      position = next;
    }
    return extents;
  }

  async cache(offset: number, length: number): Promise<void> {
    const refused = this.refuse(offset, length, "read");
    if (refused) throw refused;
    if (length === 0) return;
    const wanted: number[] = [];
    const last = Math.floor((offset + length - 1) / this.chunkSize);
    for (let index = Math.floor(offset / this.chunkSize); index <= last; index++) {
      if (this.disk.get(index) === undefined && this.committed.has(index)) wanted.push(index);
    }
    await this.track(
      runLimited(wanted, this.concurrency, async (index) => {
        const ref = this.committed.get(index);
        if (ref === undefined || this.disk.get(index) !== undefined) return;
        if (this.disk.filling(index) === undefined) await this.fetchChunk(index, ref.generation);
        await this.disk.fillSettled(index); // CACHE replies once the chunk is on disk
      }),
    );
  }

  stats(): VolumeStats {
    return {
      logicalBytes: this.size,
      storedBytes: this.storedBytes,
      compressionRatio: this.storedBytes > 0 ? this.plainStoredBytes / this.storedBytes : 1,
      dirtyBytes: this.disk.dirtyBytes,
      chunksStored: this.committed.size,
      epoch: this.epoch,
      cachedBytes: this.disk.cachedBytes,
      queueDepth: this.pendingUploads + this.writeBehind.running,
      lastCommitAt: this.lastCommitAt,
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
        while (this.disk.dirtyCount > 0) await this.commitCycle();
        await this.syncLocal();
        await this.runningCycle?.catch(() => {});
      } catch (error) {
        this.state = "open";
        throw error;
      } finally {
        this.closing = undefined;
      }
      this.shutDown(true);
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
    if (this.commitTimer !== undefined) clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.retryTimer?.wake();
    this.current = undefined;
    this.loading.clear();
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

function isAllZero(data: Buffer): boolean {
  for (let offset = 0; offset < data.length; offset += ZEROS.length) {
    const length = Math.min(ZEROS.length, data.length - offset);
    if (data.compare(ZEROS, 0, length, offset, offset + length) !== 0) return false;
  }
  return true;
}

/** Runs `task` over `items`, at most `limit` at a time; stops starting new ones after a failure. */
async function runLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}

function asEio(error: unknown, what: string): StorageError {
  if (isStorageError(error) && error.code === "EIO") return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError("EIO", `${what} failed: ${message}`, { cause: error });
}
