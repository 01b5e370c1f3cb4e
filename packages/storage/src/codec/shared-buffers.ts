/**
 * Reusable chunk-sized buffers backed by SharedArrayBuffer, for content on its way to the codec
 * workers: a worker reads shared memory in place (no copy, no transfer), and reused buffers allocate
 * nothing in steady state, where fresh megabyte Buffers drive major GCs (docs/performance.md).
 * A buffer is acquired, used and released exactly once (BufferPool); one never released is simply
 * garbage-collected, so an abandoned user leaks nothing.
 */

import { assertStillPoisoned, BufferPoolMisuse, poison, type BufferPool, type BufferPoolOptions } from "../util/buffer-pool";

/** Capacities are rounded up to this, so chunks of one volume (and the last, shorter one) share buffers. */
const CAPACITY_STEP = 64 * 1024;

export interface SharedBufferPoolOptions extends BufferPoolOptions {
  /** Free buffers kept per capacity; more are dropped on release (default 32). */
  maxFree?: number;
}

export class SharedBufferPool implements BufferPool {
  readonly #maxFree: number;
  readonly #debug: boolean;
  /** Debug mode: every memory ever lent, to tell a second release from foreign memory. */
  readonly #known = new WeakSet<SharedArrayBuffer>();
  readonly #free = new Map<number, SharedArrayBuffer[]>();
  /** Memory this pool handed out and has not had back: a release of anything else is ignored. */
  readonly #lent = new WeakSet<SharedArrayBuffer>();

  constructor(options: SharedBufferPoolOptions = {}) {
    this.#maxFree = options.maxFree ?? 32;
    this.#debug = options.debug === true;
  }

  /** A buffer of exactly `length` bytes (contents undefined). */
  acquire(length: number): Buffer {
    const capacity = Math.max(CAPACITY_STEP, Math.ceil(length / CAPACITY_STEP) * CAPACITY_STEP);
    const reused = this.#free.get(capacity)?.pop();
    if (reused !== undefined && this.#debug) assertStillPoisoned(new Uint8Array(reused), "SharedBufferPool");
    const memory = reused ?? new SharedArrayBuffer(capacity);
    this.#lent.add(memory);
    if (this.#debug) this.#known.add(memory);
    return Buffer.from(memory, 0, length);
  }

  /** Hands a buffer from acquire() back; anything else (or a second release) is ignored. */
  release(buffer: Buffer | null | undefined): void {
    if (buffer === null || buffer === undefined) return;
    const memory = buffer.buffer;
    if (!(memory instanceof SharedArrayBuffer)) return;
    if (!this.#lent.has(memory)) {
      if (this.#debug && this.#known.has(memory)) throw new BufferPoolMisuse("SharedBufferPool: a buffer was released twice");
      return;
    }
    this.#lent.delete(memory);
    if (this.#debug) poison(new Uint8Array(memory));
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
