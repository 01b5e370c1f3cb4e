/**
 * Which chunks have been written whole, every byte in any order, since last handed out: write-behind's
 * candidates. In order is not enough: a client with several connections delivers a chunk's pieces
 * out of order. A chunk that had a block written twice on the way is not a candidate: a copy writes
 * each byte once, while a random writer that happens to cover a chunk will write it again before its
 * commit, and uploading it ahead only takes cores from the writes. Counted in blocks of 4 KiB (a
 * writer not block-aligned may never complete a chunk: its commit uploads it); at most `maxTracked`
 * partly written chunks keep a bitmap.
 */
const BLOCK_SIZE = 4096;
/** What note() returns for the usual write that completes nothing: no array per write. */
const NONE: readonly number[] = Object.freeze([]);

interface Partial {
  bits: Uint32Array;
  covered: number;
  /** A block was written twice: the chunk is not handed out (until reset). */
  rewritten: boolean;
}

export class ChunkCoverage {
  readonly #chunkSize: number;
  readonly #size: number;
  readonly #block: number;
  readonly #maxTracked: number;
  /** Partly written chunks, oldest first (a Map keeps insertion order). */
  readonly #partial = new Map<number, Partial>();

  constructor(options: { chunkSize: number; size: number; maxTracked?: number }) {
    this.#chunkSize = options.chunkSize;
    this.#size = options.size;
    this.#block = Math.min(BLOCK_SIZE, options.chunkSize);
    this.#maxTracked = options.maxTracked ?? 4096;
  }

  /** Partly written chunks tracked now (tests). */
  get tracked(): number {
    return this.#partial.size;
  }

  /** Notes a write of [offset, end); returns the chunks it completed, in ascending order. */
  note(offset: number, end: number): readonly number[] {
    let completed: number[] | undefined;
    const chunkSize = this.#chunkSize;
    const block = this.#block;
    for (let index = Math.floor(offset / chunkSize); index * chunkSize < end; index++) {
      const chunkStart = index * chunkSize;
      const length = Math.min(chunkSize, this.#size - chunkStart);
      if (length <= 0) break;
      const from = Math.max(offset, chunkStart) - chunkStart;
      const to = Math.min(end, chunkStart + length) - chunkStart;
      const blocks = Math.ceil(length / block);
      const first = Math.ceil(from / block);
      // Whole blocks only; a chunk's short last block counts once the write reaches the chunk's end.
      const stop = to === length ? blocks : Math.floor(to / block); // exclusive
      if (first >= stop) continue;
      if (first === 0 && stop === blocks) {
        this.#partial.delete(index);
        (completed ??= []).push(index);
        continue;
      }
      const entry = this.#partial.get(index) ?? this.#track(index, blocks);
      const { bits } = entry;
      for (let b = first; b < stop; b++) {
        const word = b >>> 5;
        const mask = 1 << (b & 31);
        const value = bits[word]!;
        if ((value & mask) === 0) {
          bits[word] = value | mask;
          entry.covered++;
        } else {
          entry.rewritten = true;
        }
      }
      // A rewritten chunk stays tracked, so it cannot complete again without a reset.
      if (entry.covered === blocks && !entry.rewritten) {
        this.#partial.delete(index);
        (completed ??= []).push(index);
      }
    }
    return completed ?? NONE;
  }

  /** Forgets all partial coverage (a commit froze every dirty chunk: what follows starts afresh). */
  reset(): void {
    this.#partial.clear();
  }

  #track(index: number, blocks: number): Partial {
    if (this.#partial.size >= this.#maxTracked) this.#partial.delete(this.#partial.keys().next().value as number);
    const entry = { bits: new Uint32Array(Math.ceil(blocks / 32)), covered: 0, rewritten: false };
    this.#partial.set(index, entry);
    return entry;
  }
}
