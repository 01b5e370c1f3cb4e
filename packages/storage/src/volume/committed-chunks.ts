/** The volume's committed chunk map (chunk -> generation and stored size) as of its epoch, with the totals stats() reports. */
import type { ChunkRef } from "../chunk-index";

export class CommittedChunks {
  readonly #chunks: Map<number, ChunkRef>;
  readonly #chunkLength: (index: number) => number;
  #epoch: number;
  #storedBytes = 0;
  #plainBytes = 0;
  #lastCommitAt: number | undefined;

  constructor(snapshot: { epoch: number; chunks: Map<number, ChunkRef> }, chunkLength: (index: number) => number) {
    this.#chunks = new Map(snapshot.chunks);
    this.#epoch = snapshot.epoch;
    this.#chunkLength = chunkLength;
    for (const [index, ref] of this.#chunks) {
      this.#storedBytes += ref.storedSize;
      this.#plainBytes += chunkLength(index);
    }
  }

  get(index: number): ChunkRef | undefined {
    return this.#chunks.get(index);
  }

  has(index: number): boolean {
    return this.#chunks.has(index);
  }

  get size(): number {
    return this.#chunks.size;
  }

  get epoch(): number {
    return this.#epoch;
  }

  get storedBytes(): number {
    return this.#storedBytes;
  }

  /** Plain bytes of the committed chunks / their stored bytes (1 when nothing is stored). */
  get compressionRatio(): number {
    return this.#storedBytes > 0 ? this.#plainBytes / this.#storedBytes : 1;
  }

  /** When the last commit landed (ms since the Unix epoch), if any did since open. */
  get lastCommitAt(): number | undefined {
    return this.#lastCommitAt;
  }

  /** A commit landed at `epoch`: `set` chunks point at new objects, `remove` chunks left the map. */
  apply(epoch: number, set: ReadonlyArray<readonly [number, ChunkRef]>, remove: readonly number[], at: number): void {
    for (const [index, ref] of set) {
      this.#forget(index);
      this.#chunks.set(index, ref);
      this.#storedBytes += ref.storedSize;
      this.#plainBytes += this.#chunkLength(index);
    }
    for (const index of remove) this.#forget(index);
    this.#epoch = epoch;
    this.#lastCommitAt = at;
  }

  /** A private copy of the whole map. */
  copy(): Map<number, ChunkRef> {
    return new Map(this.#chunks);
  }

  #forget(index: number): void {
    const previous = this.#chunks.get(index);
    if (previous === undefined) return;
    this.#storedBytes -= previous.storedSize;
    this.#plainBytes -= this.#chunkLength(index);
    this.#chunks.delete(index);
  }
}
