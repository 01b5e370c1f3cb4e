/**
 * Reusable chunk-sized buffers backed by SharedArrayBuffer, for content on its way to the codec
 * workers. Two reasons:
 * - a worker reads shared memory in place, so a chunk reaches it without a copy or a transfer;
 * - every fresh megabyte Buffer counts as V8 "external memory", and enough of it starts a major GC of
 *   the whole heap (docs/performance.md); reused buffers allocate nothing in steady state.
 *
 * A buffer is acquired, used, and released exactly once; the caller must be sure nobody reads it
 * after release (the next acquirer overwrites it). Buffers that are never released are simply
 * garbage-collected, so an abandoned user leaks nothing.
 */

/** Capacities are rounded up to this, so chunks of one volume (and the last, shorter one) share buffers. */
const CAPACITY_STEP = 64 * 1024;

export interface SharedBufferPoolOptions {
  /** Free buffers kept per capacity; more are dropped on release (default 32). */
  maxFree?: number;
}

export class SharedBufferPool {
  readonly #maxFree: number;
  readonly #free = new Map<number, SharedArrayBuffer[]>();
  /** Memory this pool handed out and has not had back: a release of anything else is ignored. */
  readonly #lent = new WeakSet<SharedArrayBuffer>();

  constructor(options: SharedBufferPoolOptions = {}) {
    this.#maxFree = options.maxFree ?? 32;
  }

  /** A buffer of exactly `length` bytes (contents undefined). */
  acquire(length: number): Buffer {
    const capacity = Math.max(CAPACITY_STEP, Math.ceil(length / CAPACITY_STEP) * CAPACITY_STEP);
    const memory = this.#free.get(capacity)?.pop() ?? new SharedArrayBuffer(capacity);
    this.#lent.add(memory);
    return Buffer.from(memory, 0, length);
  }

  /** Hands a buffer from acquire() back; anything else (or a second release) is ignored. */
  release(buffer: Buffer | null | undefined): void {
    if (buffer === null || buffer === undefined) return;
    const memory = buffer.buffer;
    if (!(memory instanceof SharedArrayBuffer) || !this.#lent.has(memory)) return;
    this.#lent.delete(memory);
    let free = this.#free.get(memory.byteLength);
    if (free === undefined) this.#free.set(memory.byteLength, (free = []));
    if (free.length < this.#maxFree) free.push(memory);
  }

  /** Free buffers held (tests). */
  get freeCount(): number {
    let count = 0;
    for (const list of this.#free.values()) count += list.length;
    return count;
  }
}
