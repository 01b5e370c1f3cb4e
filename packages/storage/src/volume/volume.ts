/**
 * A volume: `size` bytes split into fixed chunks, each chunk an immutable object generation in
 * the store, the chunk map (chunk -> generation) persisted through a ChunkIndex.
 *
 * Memory holds two kinds of chunk: clean chunks (a copy of a committed object) in an LRU bounded
 * in bytes, and dirty chunks (written since the last commit) in a map that is never evicted.
 * A dirty chunk's data may be `null`: a hole (trimmed or zeroed whole), which costs no memory and
 * becomes "no object" at the next commit. A chunk with neither memory state nor a committed
 * object reads as zeros without touching the store.
 *
 * Hot path: a read or write whose chunks are all in memory completes synchronously and returns
 * an already-resolved promise, so a 4k request costs one copy and no event-loop hop. Misses go
 * to the store, and concurrent misses on one chunk generation share a single fetch.
 *
 * Flush (serialised; concurrent callers share the next queued one): every dirty chunk is copied
 * and uploaded as a new generation (= the commit's epoch) with bounded concurrency, then one
 * ChunkIndex commit moves the map and the epoch forward at once, then the superseded objects are
 * deleted. A chunk written again while its upload was in flight has a newer version and stays
 * dirty for the next flush. An all-zero chunk is never uploaded: it is removed from the map.
 * Nothing is dropped when the store or the index fails: flush rejects with EIO and the chunks
 * stay dirty, so the next flush retries them.
 */
import { LRUCache } from "lru-cache";
import type { BlockDevice, DeviceCapabilities, Extent, WriteOptions, ZeroOptions } from "../block-device";
import type { ChunkCommit, ChunkIndex, ChunkRef } from "../chunk-index";
import { StorageError, isStorageError } from "../errors";
import type { ObjectStore } from "../object-store/object-store";
import type { ChunkCodec } from "./chunk-codec";
import { ChunkStore } from "./chunk-store";

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
  /** Memory for clean chunks, bytes (default 256 MiB). */
  cacheBytes?: number;
  /** Dirty bytes beyond which writes wait for a background flush (default 64 MiB). */
  dirtyLimitBytes?: number;
  /** Uploads (and prefetches) in flight at once (default 16). */
  uploadConcurrency?: number;
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
  /** Bytes of written chunks not yet committed. */
  dirtyBytes: number;
  /** Committed chunk objects. */
  chunksStored: number;
  /** The chunk map's current epoch (commits so far). */
  epoch: number;
  /** Bytes of clean chunks held in memory. */
  cachedBytes: number;
}

interface DirtyChunk {
  /** The chunk's bytes, or null when it is a hole (reads as zeros, no object after commit). */
  data: Buffer | null;
  /** Bumped by every change, so a flush can tell whether what it uploaded is still current. */
  version: number;
}

const MIN_CHUNK_SIZE = 512;
const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
/** BLOCK_STATUS answers cover at most this many chunks; clients ask again for the rest. */
const MAX_STATUS_CHUNKS = 65_536;
const RESOLVED: Promise<void> = Promise.resolve();
const ZEROS = Buffer.alloc(64 * 1024);

export class Volume implements BlockDevice {
  readonly volumeId: string;
  readonly size: number;
  readonly chunkSize: number;
  readonly capabilities: DeviceCapabilities;

  private readonly index: ChunkIndex;
  private readonly chunks: ChunkStore;
  private readonly logger: VolumeLogger | undefined;
  private readonly dirtyLimit: number;
  private readonly concurrency: number;
  private readonly chunkCount: number;

  /** Committed chunk map as of `epoch`. */
  private readonly committed: Map<number, ChunkRef>;
  private epoch: number;
  private storedBytes = 0;

  private readonly dirty = new Map<number, DirtyChunk>();
  private dirtyBytes = 0;
  private versions = 0;
  private readonly clean: LRUCache<number, Buffer>;
  /** In-flight fetches, one per chunk, tagged with the generation they fetch. */
  private readonly loading = new Map<number, { generation: number; promise: Promise<Buffer | undefined> }>();

  /** Resolves when the last flush queued so far has finished (never rejects). */
  private flushTail: Promise<void> = RESOLVED;
  /** A flush queued behind the running one; callers arriving now can share it. */
  private queuedFlush: Promise<void> | undefined;
  private backgroundFlush: Promise<void> | undefined;
  /** Writes waiting for dirty bytes to drop below the limit; woken after every flush attempt. */
  private roomWaiters: Array<() => void> = [];
  /** Slow-path operations still running (close waits for them before its final flush). */
  private readonly active = new Set<Promise<unknown>>();
  private state: "open" | "closing" | "closed" = "open";
  private closing: Promise<void> | undefined;

  private constructor(options: VolumeOptions, snapshot: { epoch: number; chunks: Map<number, ChunkRef> }) {
    this.volumeId = options.volumeId;
    this.size = options.size;
    this.chunkSize = options.chunkSize;
    this.index = options.index;
    this.chunks = new ChunkStore({ store: options.store, volumeId: options.volumeId, codec: options.codec });
    this.logger = options.logger;
    this.dirtyLimit = options.dirtyLimitBytes ?? 64 * 1024 * 1024;
    this.concurrency = Math.max(1, options.uploadConcurrency ?? 16);
    this.chunkCount = Math.ceil(this.size / this.chunkSize);
    this.committed = new Map(snapshot.chunks);
    this.epoch = snapshot.epoch;
    for (const ref of this.committed.values()) this.storedBytes += ref.storedSize;
    this.clean = new LRUCache<number, Buffer>({
      maxSize: Math.max(1, options.cacheBytes ?? 256 * 1024 * 1024),
      sizeCalculation: (data) => data.length,
    });
    this.capabilities = {
      readOnly: false,
      canFlush: true,
      canTrim: true,
      canZero: true,
      canFastZero: true, // zeroing only drops or fills chunks in memory: never slower than writing
      canCache: true,
      canMultiConn: true, // one engine serves every connection, so all see the same bytes
      allocationUnit: this.chunkSize,
    };
  }

  /** Loads the chunk map and returns the open volume. */
  static async open(options: VolumeOptions): Promise<Volume> {
    const { size, chunkSize } = options;
    if (!Number.isSafeInteger(size) || size <= 0) throw new StorageError("EINVAL", `invalid volume size ${size}`);
    if (!Number.isSafeInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE || (chunkSize & (chunkSize - 1)) !== 0) {
      throw new StorageError("EINVAL", `chunk size ${chunkSize} is not a power of two between ${MIN_CHUNK_SIZE} and ${MAX_CHUNK_SIZE}`);
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
    return new Volume(options, snapshot);
  }

  // ---- reads -------------------------------------------------------------------------------

  read(offset: number, target: Uint8Array): Promise<void> {
    const refused = this.refuse(offset, target.length, "read");
    if (refused) return Promise.reject(refused);
    let misses: Promise<void>[] | undefined;
    const end = offset + target.length;
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
    return misses === undefined ? RESOLVED : this.track(Promise.all(misses).then(() => undefined));
  }

  /** Copies from memory (dirty, clean, or a known hole); false when the store must be asked. */
  private copyOut(index: number, within: number, target: Uint8Array, targetOffset: number, length: number): boolean {
    const dirty = this.dirty.get(index);
    const data = dirty !== undefined ? dirty.data : this.clean.get(index);
    if (data) {
      data.copy(target, targetOffset, within, within + length);
      return true;
    }
    if (dirty !== undefined || !this.committed.has(index)) {
      target.fill(0, targetOffset, targetOffset + length);
      return true;
    }
    return false;
  }

  private async readMiss(index: number, within: number, target: Uint8Array, targetOffset: number, length: number): Promise<void> {
    for (;;) {
      if (this.copyOut(index, within, target, targetOffset, length)) return;
      const generation = this.committed.get(index)!.generation;
      const data = await this.fetchChunk(index, generation);
      // Memory may have moved on while we waited (a write, a commit): it is at least as new.
      if (this.copyOut(index, within, target, targetOffset, length)) return;
      if (data !== undefined && this.committed.get(index)?.generation === generation) {
        data.copy(target, targetOffset, within, within + length);
        return;
      }
    }
  }

  /**
   * Fetches one generation of a chunk, sharing the request with concurrent callers. The result
   * enters the clean cache only if it is still the current, un-rewritten content. Resolves
   * undefined when the object vanished because a commit superseded it meanwhile.
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
      if (current && !this.dirty.has(index) && this.state !== "closed") this.clean.set(index, data);
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

  // ---- writes, trims, zeroes ---------------------------------------------------------------

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    const refused = this.refuse(offset, data.length, "write");
    if (refused) return Promise.reject(refused);
    const source = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (this.dirtyBytes > this.dirtyLimit) return this.track(this.afterRoom(() => this.modify(offset, data.length, source), options));
    const pending = this.modify(offset, data.length, source);
    if (this.dirtyBytes > this.dirtyLimit / 2) this.startBackgroundFlush();
    if (options?.fua) return this.track((pending ?? RESOLVED).then(() => this.flush()));
    return pending === undefined ? RESOLVED : this.track(pending);
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.zeroRange(offset, length, options);
  }

  /** Zeroes are cheap here (holes or in-memory fills), so FAST_ZERO is honoured and NO_HOLE may still leave a hole: it reads as zeros either way. */
  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.zeroRange(offset, length, options);
  }

  private zeroRange(offset: number, length: number, options: WriteOptions | undefined): Promise<void> {
    const refused = this.refuse(offset, length, "write");
    if (refused) return Promise.reject(refused);
    if (this.dirtyBytes > this.dirtyLimit) return this.track(this.afterRoom(() => this.modify(offset, length, null), options));
    const pending = this.modify(offset, length, null);
    if (this.dirtyBytes > this.dirtyLimit / 2) this.startBackgroundFlush();
    if (options?.fua) return this.track((pending ?? RESOLVED).then(() => this.flush()));
    return pending === undefined ? RESOLVED : this.track(pending);
  }

  private async afterRoom(apply: () => Promise<void> | undefined, options: WriteOptions | undefined): Promise<void> {
    await this.waitForDirtyRoom();
    await apply();
    if (this.dirtyBytes > this.dirtyLimit / 2) this.startBackgroundFlush();
    if (options?.fua) await this.flush();
  }

  /**
   * Applies `source` (or zeros when null) to `length` bytes at `offset`. Returns undefined when
   * done synchronously, else a promise for the chunks that first had to be fetched.
   */
  private modify(offset: number, length: number, source: Buffer | null): Promise<void> | undefined {
    let misses: Promise<void>[] | undefined;
    const end = offset + length;
    for (let position = offset; position < end; ) {
      const index = Math.floor(position / this.chunkSize);
      const within = position - index * this.chunkSize;
      const pieceLength = Math.min(this.chunkSize - within, end - position);
      const sourceOffset = position - offset;
      if (within === 0 && pieceLength === this.chunkLength(index)) {
        if (source === null) this.punchHole(index);
        else this.replaceChunk(index, source, sourceOffset);
      } else if (!this.patchChunk(index, within, pieceLength, source, sourceOffset)) {
        (misses ??= []).push(this.patchAfterFetch(index, within, pieceLength, source, sourceOffset));
      }
      position += pieceLength;
    }
    return misses === undefined ? undefined : Promise.all(misses).then(() => undefined);
  }

  /** A write covering the whole chunk: no need to know the old content. */
  private replaceChunk(index: number, source: Buffer, sourceOffset: number): void {
    const length = this.chunkLength(index);
    const dirty = this.dirty.get(index);
    if (dirty?.data) {
      // In place is safe: an upload in flight sends its own copy.
      source.copy(dirty.data, 0, sourceOffset, sourceOffset + length);
      dirty.version = ++this.versions;
      return;
    }
    const reuse = this.clean.get(index);
    if (reuse) this.clean.delete(index);
    const data = reuse ?? Buffer.allocUnsafe(length);
    source.copy(data, 0, sourceOffset, sourceOffset + length);
    this.setDirty(index, dirty, data);
  }

  /** The whole chunk becomes a hole: no memory now, no object after the next commit. */
  private punchHole(index: number): void {
    this.clean.delete(index);
    const dirty = this.dirty.get(index);
    if (dirty !== undefined) {
      if (dirty.data) this.dirtyBytes -= dirty.data.length;
      dirty.data = null;
      dirty.version = ++this.versions;
    } else if (this.committed.has(index)) {
      this.dirty.set(index, { data: null, version: ++this.versions });
    }
    // Neither dirty nor committed: already a hole, nothing to record.
  }

  /** Part of a chunk; false when its current content must first be fetched. */
  private patchChunk(index: number, within: number, length: number, source: Buffer | null, sourceOffset: number): boolean {
    const dirty = this.dirty.get(index);
    let data: Buffer | undefined;
    if (dirty !== undefined) {
      if (dirty.data === null) {
        if (source === null) return true; // zeros into a hole
        dirty.data = Buffer.alloc(this.chunkLength(index));
        this.dirtyBytes += dirty.data.length;
      }
      data = dirty.data;
    } else {
      data = this.clean.get(index);
      if (data !== undefined) {
        this.clean.delete(index);
      } else if (!this.committed.has(index)) {
        if (source === null) return true; // zeros into a hole
        data = Buffer.alloc(this.chunkLength(index));
      } else {
        return false;
      }
    }
    if (source === null) data.fill(0, within, within + length);
    else source.copy(data, within, sourceOffset, sourceOffset + length);
    if (dirty !== undefined) dirty.version = ++this.versions;
    else this.setDirty(index, undefined, data);
    return true;
  }

  private async patchAfterFetch(index: number, within: number, length: number, source: Buffer | null, sourceOffset: number): Promise<void> {
    for (;;) {
      if (this.patchChunk(index, within, length, source, sourceOffset)) return;
      const generation = this.committed.get(index)!.generation;
      const fetched = await this.fetchChunk(index, generation);
      if (this.patchChunk(index, within, length, source, sourceOffset)) return;
      if (fetched !== undefined && this.committed.get(index)?.generation === generation) {
        // Not cached (the cache is smaller than a chunk): adopt a private copy, since other
        // waiters of the same fetch may still read the fetched buffer.
        const data = Buffer.from(fetched);
        if (source === null) data.fill(0, within, within + length);
        else source.copy(data, within, sourceOffset, sourceOffset + length);
        this.setDirty(index, undefined, data);
        return;
      }
    }
  }

  private setDirty(index: number, existing: DirtyChunk | undefined, data: Buffer): void {
    if (existing !== undefined) {
      if (existing.data) this.dirtyBytes -= existing.data.length;
      existing.data = data;
      existing.version = ++this.versions;
    } else {
      this.dirty.set(index, { data, version: ++this.versions });
    }
    this.dirtyBytes += data.length;
  }

  // ---- backpressure --------------------------------------------------------------------------

  /**
   * Like the kernel's dirty_background_ratio / dirty_ratio: past half the dirty limit a
   * background flush starts and writes carry on; past the limit writes wait here until a flush
   * makes room. They never fail for it: a failing store is retried with backoff meanwhile.
   */
  private async waitForDirtyRoom(): Promise<void> {
    while (this.dirtyBytes > this.dirtyLimit) {
      if (this.state !== "open") throw new StorageError("ESHUTDOWN", `volume ${this.volumeId} is closing`);
      this.startBackgroundFlush();
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
  }

  private wakeRoomWaiters(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }

  private startBackgroundFlush(): void {
    if (this.backgroundFlush !== undefined || this.state !== "open") return;
    this.backgroundFlush = (async () => {
      let delayMs = 50;
      // Stops when closing: waiting writes are refused then, and close's own flush reports errors.
      while (this.dirtyBytes > this.dirtyLimit / 2 && this.state === "open") {
        try {
          await this.flush();
          delayMs = 50;
        } catch (error) {
          this.logger?.warn({ err: error, volumeId: this.volumeId, retryInMs: delayMs }, "background flush failed");
          this.wakeRoomWaiters();
          await new Promise((resolve) => setTimeout(resolve, delayMs));
          delayMs = Math.min(delayMs * 2, 5_000);
        }
        this.wakeRoomWaiters();
      }
    })().finally(() => {
      this.backgroundFlush = undefined;
      this.wakeRoomWaiters();
    });
  }

  // ---- flush ---------------------------------------------------------------------------------

  flush(): Promise<void> {
    if (this.state === "closed") return Promise.reject(new StorageError("ESHUTDOWN", `volume ${this.volumeId} is closed`));
    // A flush that has not started yet covers every write completed before now: share it.
    if (this.queuedFlush !== undefined) return this.queuedFlush;
    const run = this.flushTail.then(() => {
      this.queuedFlush = undefined;
      return this.flushOnce();
    });
    this.queuedFlush = run;
    this.flushTail = run.catch(() => {});
    return run;
  }

  private async flushOnce(): Promise<void> {
    if (this.dirty.size === 0) return;
    const epoch = this.epoch + 1;
    const work = [...this.dirty.entries()];
    const set: Array<[number, ChunkRef]> = [];
    const remove: number[] = [];
    const uploaded: Array<[number, number]> = [];
    const settled: Array<{ index: number; entry: DirtyChunk; version: number }> = [];

    try {
      await runLimited(work, this.concurrency, async ([index, entry]) => {
        // Copy and version are taken together, synchronously: the upload sends a consistent
        // chunk even if writes land on it while the request is in flight.
        const version = entry.version;
        if (entry.data === null || isAllZero(entry.data)) {
          if (this.committed.has(index)) remove.push(index);
          settled.push({ index, entry, version });
          return;
        }
        const copy = Buffer.from(entry.data);
        const storedSize = await this.chunks.save(index, epoch, copy);
        uploaded.push([index, epoch]);
        set.push([index, { generation: epoch, storedSize }]);
        settled.push({ index, entry, version });
      });
    } catch (error) {
      // Nothing was committed: the chunks stay dirty and the uploads are unreferenced garbage.
      await this.chunks.deleteGenerations(uploaded).catch((cleanupError: unknown) => {
        this.logger?.warn({ err: cleanupError, volumeId: this.volumeId }, "could not delete uploads of a failed flush");
      });
      throw asEio(error, `flush of ${this.volumeId}`);
    }
    if (set.length > 0 || remove.length > 0) await this.commit({ epoch, set, remove });

    const superseded: Array<[number, number]> = [];
    if (set.length > 0 || remove.length > 0) {
      for (const [index, ref] of set) {
        const previous = this.committed.get(index);
        if (previous !== undefined) {
          superseded.push([index, previous.generation]);
          this.storedBytes -= previous.storedSize;
        }
        this.committed.set(index, ref);
        this.storedBytes += ref.storedSize;
      }
      for (const index of remove) {
        const previous = this.committed.get(index)!;
        superseded.push([index, previous.generation]);
        this.storedBytes -= previous.storedSize;
        this.committed.delete(index);
      }
      this.epoch = epoch;
    }
    for (const { index, entry, version } of settled) {
      if (this.dirty.get(index) !== entry || entry.version !== version) continue; // rewritten meanwhile
      this.dirty.delete(index);
      if (entry.data) {
        this.dirtyBytes -= entry.data.length;
        if (this.committed.has(index)) this.clean.set(index, entry.data);
      }
    }
    this.logger?.debug({ volumeId: this.volumeId, epoch: this.epoch, uploaded: set.length, removed: remove.length }, "flushed");
    // Old generations are garbage now; failing to delete them loses nothing (GC finds them).
    await this.chunks.deleteGenerations(superseded).catch((error: unknown) => {
      this.logger?.warn({ err: error, volumeId: this.volumeId, objects: superseded.length }, "could not delete superseded chunk objects");
    });
  }

  /**
   * Commits through the index. When the commit fails, the index is asked what it holds: a
   * commit whose answer was lost (connection dropped after the transaction) counts as done.
   * The uploads are never deleted here — after an unknown outcome they may be referenced.
   */
  private async commit(commit: ChunkCommit): Promise<void> {
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
      if (!this.dirty.has(index) && this.committed.has(index) && !this.clean.has(index)) wanted.push(index);
    }
    await this.track(
      runLimited(wanted, this.concurrency, async (index) => {
        const ref = this.committed.get(index);
        if (ref !== undefined) await this.fetchChunk(index, ref.generation);
      }),
    );
  }

  stats(): VolumeStats {
    return {
      logicalBytes: this.size,
      storedBytes: this.storedBytes,
      dirtyBytes: this.dirtyBytes,
      chunksStored: this.committed.size,
      epoch: this.epoch,
      cachedBytes: this.clean.calculatedSize,
    };
  }

  /**
   * Refuses new writes, waits for operations in progress, flushes everything, then drops the
   * memory. A failed final flush rejects and leaves the volume open, so the caller may retry.
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    if (this.state === "closed") return RESOLVED;
    this.state = "closing";
    this.closing = (async () => {
      try {
        while (this.active.size > 0) await Promise.allSettled([...this.active]);
        while (this.dirty.size > 0) await this.flush();
      } catch (error) {
        this.state = "open";
        throw error;
      } finally {
        this.closing = undefined;
      }
      this.state = "closed";
      this.clean.clear();
      this.loading.clear();
    })();
    return this.closing;
  }

  /**
   * Drops the volume at once without flushing: unflushed writes are lost, as in a crash. For a
   * holder that has been fenced (its commits would be refused anyway) and for crash tests.
   */
  abandon(): void {
    this.state = "closed";
    this.dirty.clear();
    this.dirtyBytes = 0;
    this.clean.clear();
    this.loading.clear();
    this.wakeRoomWaiters();
  }

  // ---- helpers -------------------------------------------------------------------------------

  private isAllocated(index: number): boolean {
    const dirty = this.dirty.get(index);
    return dirty !== undefined ? dirty.data !== null : this.committed.has(index);
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
