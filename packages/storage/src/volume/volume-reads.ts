/**
 * The read path. A read whose chunks are all cached (or filling, or holes) is served synchronously
 * and returns an already-resolved promise; a miss warms a cold chunk or fetches the chunk from the
 * store, then copies from whatever is newest by then.
 */
import { StorageError } from "../errors";
import { copyBytes } from "../util/copy-bytes";
import type { ChunkFetches } from "./chunk-fetches";
import { walkChunks, type ChunkPiece } from "./chunk-walk";
import type { ReadAhead } from "./read-ahead";
import type { VolumeContext } from "./volume-context";

const RESOLVED: Promise<void> = Promise.resolve();

export class VolumeReads {
  constructor(
    private readonly ctx: VolumeContext,
    private readonly fetches: ChunkFetches,
    private readonly readAhead: ReadAhead,
  ) {}

  /** Reads a range the caller has checked. */
  read(offset: number, target: Uint8Array): Promise<void> {
    let misses: Promise<void>[] | undefined;
    try {
      const counters = this.ctx.counters;
      walkChunks(offset, target.length, this.ctx.chunkSize, (piece) => {
        if (this.#copyOut(piece, target)) counters.cacheHits++;
        else {
          counters.cacheMisses++;
          (misses ??= []).push(this.#readMiss(piece, target));
        }
      });
    } catch (error) {
      return Promise.reject(error);
    }
    this.readAhead.noteRead(offset, offset + target.length);
    return misses === undefined ? RESOLVED : this.ctx.track(Promise.all(misses).then(() => undefined));
  }

  /** Reads a checked range only if it can be done synchronously (holes excepted: read() reports them); false changes nothing. */
  readNow(offset: number, target: Uint8Array): boolean {
    let pieces = 0;
    const copied = (piece: ChunkPiece) => {
      pieces++;
      return this.#copyOut(piece, target, false);
    };
    if (!walkChunks(offset, target.length, this.ctx.chunkSize, copied)) return false;
    this.ctx.counters.cacheHits += pieces;
    this.readAhead.noteRead(offset, offset + target.length);
    return true;
  }

  /**
   * Copies from the cache, a fill on its way there, or zeros for a hole; false when the store must be
   * asked, or for a hole when `holes` is false.
   */
  #copyOut(piece: ChunkPiece, target: Uint8Array, holes = true): boolean {
    const { index, within, length, rangeOffset } = piece;
    const { disk, committed } = this.ctx;
    const entry = disk.get(index);
    if (entry !== undefined) {
      if ((entry.hole && !holes) || entry.cold) return false; // a cold one is warmed first (#readMiss)
      disk.readInto(entry, within, target, rangeOffset, length);
      return true;
    }
    const filling = disk.filling(index);
    if (filling !== undefined) {
      copyBytes(filling, target, rangeOffset, within, within + length);
      return true;
    }
    if (!committed.has(index) && holes) {
      target.fill(0, rangeOffset, rangeOffset + length);
      return true;
    }
    return false;
  }

  async #readMiss(piece: ChunkPiece, target: Uint8Array): Promise<void> {
    const ctx = this.ctx;
    for (;;) {
      if (this.#copyOut(piece, target)) return;
      const cold = ctx.disk.get(piece.index);
      if (cold?.cold) {
        await ctx.disk.warm(cold);
        if (ctx.state() === "closed") throw new StorageError("ESHUTDOWN", `volume ${ctx.volumeId} is closed`);
        continue;
      }
      const generation = ctx.committed.get(piece.index)!.generation;
      const data = await this.fetches.fetch(piece.index, generation);
      // The cache may have moved on while we waited (a write, a commit): it is at least as new.
      if (this.#copyOut(piece, target)) return;
      if (data !== undefined && ctx.committed.get(piece.index)?.generation === generation) {
        copyBytes(data, target, piece.rangeOffset, piece.within, piece.within + piece.length);
        return;
      }
    }
  }
}
