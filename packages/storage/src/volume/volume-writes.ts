/**
 * The write path: writes, trims and zeroes. A change whose chunks are cached (or wholly replaced,
 * or holes) is applied synchronously; a partial change of a committed chunk that is not cached
 * fetches it first. Past the gateway's dirty limit, changes wait for room.
 */
import type { WriteOptions } from "../block-device";
import type { BudgetMember } from "../cache/cache-budget";
import { StorageError } from "../errors";
import type { ChunkFetches } from "./chunk-fetches";
import { walkChunks, type ChunkPiece } from "./chunk-walk";
import type { VolumeContext } from "./volume-context";

/** What a change tells the rest of the volume. */
export interface WriteHooks {
  /** A write, trim or zero is about to be applied (the commit scheduler counts it). */
  modifying(): void;
  /** Data was written over [offset, end) (write-behind follows sequential writers). */
  wrote(offset: number, end: number): void;
  /** FUA: the change must be flushed before it is acknowledged. */
  flush(): Promise<void>;
  /** The volume as the budget knows it: its dirty bytes, and a commit asked for when short of room. */
  member: BudgetMember;
}

const RESOLVED: Promise<void> = Promise.resolve();

export class VolumeWrites {
  constructor(
    private readonly ctx: VolumeContext,
    private readonly fetches: ChunkFetches,
    private readonly hooks: WriteHooks,
  ) {}

  /** Applies `source` (zeros when null) to a checked range; resolves once applied (and flushed, with FUA). */
  change(offset: number, length: number, source: Buffer | null, options: WriteOptions | undefined): Promise<void> {
    const ctx = this.ctx;
    if (!ctx.budget.hasDirtyRoom(ctx.disk.dirtyBytes)) return ctx.track(this.#afterRoom(offset, length, source, options));
    let pending: Promise<void> | undefined;
    try {
      pending = this.#modify(offset, length, source);
    } catch (error) {
      return Promise.reject(error);
    }
    if (options?.fua) return ctx.track((pending ?? RESOLVED).then(() => this.hooks.flush()));
    return pending === undefined ? RESOLVED : ctx.track(pending);
  }

  /** Writes a checked range only if it can be done synchronously; false changes nothing. */
  writeNow(offset: number, source: Buffer): boolean {
    const { budget, disk, committed, chunkSize } = this.ctx;
    if (!budget.hasDirtyRoom(disk.dirtyBytes)) return false;
    const local = walkChunks(
      offset,
      source.length,
      chunkSize,
      (piece) => !disk.needsContent(piece.index, piece.within, piece.length, committed.has(piece.index)),
    );
    if (!local) return false;
    if (this.#modify(offset, source.length, source) !== undefined) {
      throw new StorageError("EIO", `write at ${offset} of ${this.ctx.volumeId} needed a fetch after all`); // a bug: DiskCache.write asks needsContent too
    }
    return true;
  }

  async #afterRoom(offset: number, length: number, source: Buffer | null, options: WriteOptions | undefined): Promise<void> {
    const ctx = this.ctx;
    await ctx.budget.waitForDirtyRoom(() => {
      if (ctx.state() !== "open") throw new StorageError("ESHUTDOWN", `volume ${ctx.volumeId} is ${ctx.state()}`);
    }, this.hooks.member);
    await this.#modify(offset, length, source);
    if (options?.fua) await this.hooks.flush();
  }

  /**
   * Applies `source` (or zeros when null) to `length` bytes at `offset`. Returns undefined when
   * done synchronously, else a promise for the chunks that first had to be fetched.
   */
  #modify(offset: number, length: number, source: Buffer | null): Promise<void> | undefined {
    const { disk, committed, chunkSize } = this.ctx;
    this.hooks.modifying();
    let misses: Promise<void>[] | undefined;
    walkChunks(offset, length, chunkSize, (piece) => {
      const isCommitted = committed.has(piece.index);
      if (source === null && piece.within === 0 && piece.length === this.ctx.chunkLength(piece.index)) {
        disk.punchHole(piece.index, isCommitted);
      } else if (!disk.writeChunk(chunkWrite(piece, source), isCommitted)) {
        (misses ??= []).push(this.#patchAfterFetch(piece, source));
      }
    });
    if (source !== null) this.hooks.wrote(offset, offset + length);
    return misses === undefined ? undefined : Promise.all(misses).then(() => undefined);
  }

  async #patchAfterFetch(piece: ChunkPiece, source: Buffer | null): Promise<void> {
    const { disk, committed } = this.ctx;
    const write = chunkWrite(piece, source);
    for (;;) {
      if (disk.writeChunk(write, committed.has(piece.index))) return;
      const generation = committed.get(piece.index)!.generation;
      // A fill in flight holds the current content: no need to fetch it again.
      const fetched = disk.filling(piece.index) ?? (await this.fetches.fetch(piece.index, generation));
      if (this.ctx.state() === "closed") throw new StorageError("ESHUTDOWN", `volume ${this.ctx.volumeId} is closed`);
      if (disk.writeChunk(write, committed.has(piece.index))) return;
      if (fetched !== undefined && committed.get(piece.index)?.generation === generation) {
        // The cache could not keep it clean (tiny target, or full): take it in as dirty.
        disk.adoptFetched(piece.index, fetched);
      }
    }
  }
}

function chunkWrite(piece: ChunkPiece, source: Buffer | null) {
  return { index: piece.index, within: piece.within, length: piece.length, source, sourceOffset: piece.rangeOffset };
}
