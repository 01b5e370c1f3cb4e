/**
 * Read-ahead: once a reader (each of several interleaved ones) has read twice in a row, its next
 * chunks are fetched in parallel, or warmed when they are cached but cold.
 */
import type { ChunkFetches } from "./chunk-fetches";
import { SequentialStreams } from "./sequential-streams";
import type { VolumeContext } from "./volume-context";

export class ReadAhead {
  readonly #ctx: VolumeContext;
  readonly #fetches: ChunkFetches;
  readonly #chunksAhead: number;
  readonly #streams = new SequentialStreams();

  constructor(ctx: VolumeContext, fetches: ChunkFetches, chunksAhead: number) {
    this.#ctx = ctx;
    this.#fetches = fetches;
    this.#chunksAhead = chunksAhead;
  }

  /** Notes a read of [offset, end) and fetches ahead of its stream. */
  noteRead(offset: number, end: number): void {
    if (this.#chunksAhead === 0) return;
    const stream = this.#streams.note(offset, end, 2);
    if (stream === undefined) return;
    const { disk, committed, chunkSize, chunkCount, concurrency } = this.#ctx;
    const next = Math.floor((end - 1) / chunkSize) + 1;
    const last = Math.min(chunkCount - 1, next + this.#chunksAhead - 1);
    if (last <= stream.aheadUntil) return;
    for (let index = Math.max(next, stream.aheadUntil + 1); index <= last; index++) {
      if (this.#fetches.inFlight >= concurrency) {
        // Enough downloads in flight (as many as uploads may run): this reader's next read goes on from here.
        stream.aheadUntil = index - 1;
        return;
      }
      const ref = committed.get(index);
      const cached = disk.get(index);
      // A cached chunk that is cold (after a restart, or a direct fill) is warmed ahead instead of fetched.
      if (cached?.cold) void disk.warm(cached);
      if (ref === undefined || cached !== undefined || disk.filling(index) !== undefined || this.#fetches.isLoading(index)) continue;
      this.#fetches.fetch(index, ref.generation).catch((error: unknown) => {
        this.#ctx.logger?.debug({ err: error, volumeId: this.#ctx.volumeId, index }, "read-ahead failed");
      });
    }
    stream.aheadUntil = last;
  }
}
