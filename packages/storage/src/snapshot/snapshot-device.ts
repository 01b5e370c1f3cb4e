/**
 * A snapshot served read-only (export `VOL@NAME`): its pinned chunk map, read straight from the
 * bucket through a small in-memory cache of decoded chunks. No lease, no disk cache, no commit: a
 * snapshot never changes, so any number of devices may read it while its volume is written. Writes,
 * trims and zeroing are refused with EPERM; BLOCK_STATUS shows the map's holes.
 */
import type { BlockDevice, DeviceCapabilities, Extent } from "../block-device";
import { StorageError } from "../errors";
import type { ObjectStore } from "../object-store/object-store";
import { ChunkBuffers } from "../volume/chunk-buffers";
import type { ChunkCodec } from "../volume/chunk-codec";
import { ChunkStore } from "../volume/chunk-store";
import { walkChunks } from "../volume/chunk-walk";

export interface SnapshotChunk {
  generation: number;
  storedSize: number;
  /** The volume whose object it is (the snapshot's volume, or an ancestor of a clone). */
  owner: string;
}

export interface SnapshotDeviceOptions {
  /** The snapshot's volume: its own objects are under its prefix. */
  volumeId: string;
  /** Bytes, as the volume was when the snapshot was taken. */
  size: number;
  chunkSize: number;
  store: ObjectStore;
  chunks: ReadonlyMap<number, SnapshotChunk>;
  /** The codec that opens a volume's objects (the snapshot's volume and every ancestor it reads). */
  codecFor(volumeId: string): ChunkCodec;
  buffers?: ChunkBuffers;
  /** Decoded chunks kept in memory (default 32): sequential readers hit the one they just fetched. */
  cachedChunks?: number;
  /** Chunks fetched ahead of a sequential reader (default 4). */
  readAheadChunks?: number;
}

export function snapshotCapabilities(chunkSize: number): DeviceCapabilities {
  return {
    readOnly: true,
    canFlush: false,
    canTrim: false,
    canZero: false,
    canFastZero: false,
    canCache: true,
    canMultiConn: true, // nothing ever changes: every connection sees the same bytes
    allocationUnit: chunkSize,
  };
}

/** Largest extent list one BLOCK_STATUS walks (the volume's own limit). */
const MAX_STATUS_CHUNKS = 65_536;

export class SnapshotDevice implements BlockDevice {
  readonly size: number;
  readonly capabilities: DeviceCapabilities;
  readonly #options: SnapshotDeviceOptions;
  readonly #store: ChunkStore;
  /** Decoded chunks, least recently used first (a Map keeps insertion order). */
  readonly #decoded = new Map<number, Buffer>();
  readonly #loading = new Map<number, Promise<Buffer>>();
  #closed = false;

  constructor(options: SnapshotDeviceOptions) {
    this.#options = options;
    this.size = options.size;
    this.capabilities = snapshotCapabilities(options.chunkSize);
    const { volumeId, chunks } = options;
    this.#store = new ChunkStore({
      store: options.store,
      volumeId,
      codec: options.codecFor(volumeId),
      buffers: options.buffers ?? new ChunkBuffers(),
      owners: {
        ownerOf: (index) => {
          const owner = chunks.get(index)?.owner;
          return owner === volumeId ? undefined : owner;
        },
        codecFor: (owner) => options.codecFor(owner),
      },
    });
  }

  async read(offset: number, target: Uint8Array): Promise<void> {
    this.#check(offset, target.length);
    const { chunkSize, readAheadChunks = 4 } = this.#options;
    const pieces: Promise<void>[] = [];
    walkChunks(offset, target.length, chunkSize, (piece) => {
      const out = target.subarray(piece.rangeOffset, piece.rangeOffset + piece.length);
      if (!this.#options.chunks.has(piece.index)) {
        out.fill(0);
        return;
      }
      pieces.push(this.#chunk(piece.index).then((plain) => out.set(plain.subarray(piece.within, piece.within + piece.length))));
    });
    const last = Math.floor((offset + target.length - 1) / chunkSize);
    for (let ahead = last + 1; ahead <= last + readAheadChunks; ahead++) {
      if (this.#options.chunks.has(ahead)) this.#chunk(ahead).catch(() => undefined); // a real read reports it
    }
    await Promise.all(pieces);
  }

  write(_offset: number, _data: Uint8Array): Promise<void> {
    return Promise.reject(this.#readOnly());
  }

  trim(_offset: number, _length: number): Promise<void> {
    return Promise.reject(this.#readOnly());
  }

  writeZeroes(_offset: number, _length: number): Promise<void> {
    return Promise.reject(this.#readOnly());
  }

  /** Nothing is ever written, so nothing needs flushing. */
  async flush(): Promise<void> {}

  async cache(offset: number, length: number): Promise<void> {
    this.#check(offset, length);
    const indexes: number[] = [];
    walkChunks(offset, length, this.#options.chunkSize, (piece) => {
      if (this.#options.chunks.has(piece.index)) indexes.push(piece.index);
    });
    await Promise.all(indexes.map((index) => this.#chunk(index)));
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.#check(offset, Math.max(length, 1));
    const { chunkSize, chunks } = this.#options;
    const firstChunk = Math.floor(offset / chunkSize);
    const end = Math.min(offset + Math.max(length, 1), this.size, (firstChunk + MAX_STATUS_CHUNKS) * chunkSize);
    const extents: Extent[] = [];
    walkChunks(offset, end - offset, chunkSize, (piece) => {
      const hole = !chunks.has(piece.index);
      const last = extents.at(-1);
      if (last !== undefined && last.hole === hole) last.length += piece.length;
      else extents.push({ length: piece.length, hole, zero: hole });
    });
    return extents;
  }

  /** Drops the decoded chunks; reads after this fail. */
  close(): void {
    this.#closed = true;
    this.#decoded.clear();
  }

  #chunk(index: number): Promise<Buffer> {
    const cached = this.#decoded.get(index);
    if (cached !== undefined) {
      this.#decoded.delete(index); // now the most recently used
      this.#decoded.set(index, cached);
      return Promise.resolve(cached);
    }
    const loading = this.#loading.get(index);
    if (loading !== undefined) return loading;
    const entry = this.#options.chunks.get(index)!;
    const length = Math.min(this.#options.chunkSize, this.size - index * this.#options.chunkSize);
    const promise = this.#store.load(index, entry.generation, length).then((plain) => {
      if (plain === undefined) {
        throw new StorageError("EIO", `chunk ${index} generation ${entry.generation} of ${entry.owner} is missing from the store`);
      }
      // A copy of our own: the store's buffers are lent and go back to its pools.
      const kept = Buffer.from(plain);
      this.#store.recycle(plain);
      if (!this.#closed) this.#remember(index, kept);
      return kept;
    });
    this.#loading.set(index, promise);
    const forget = () => this.#loading.delete(index);
    promise.then(forget, forget);
    return promise;
  }

  #remember(index: number, plain: Buffer): void {
    this.#decoded.set(index, plain);
    const max = Math.max(1, this.#options.cachedChunks ?? 32);
    for (const oldest of this.#decoded.keys()) {
      if (this.#decoded.size <= max) break;
      this.#decoded.delete(oldest);
    }
  }

  #check(offset: number, length: number): void {
    if (this.#closed) throw new StorageError("ESHUTDOWN", "the snapshot export is closed");
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new StorageError("EINVAL", `range ${offset}+${length} is outside the snapshot (${this.size} bytes)`);
    }
  }

  #readOnly(): StorageError {
    return new StorageError("EPERM", "a snapshot is read-only: clone it to write (stratus volume clone)");
  }
}
