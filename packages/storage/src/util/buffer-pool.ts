/**
 * What every buffer pool of the engine offers, and its debug checks. Rule: a buffer is acquired,
 * used and released exactly once, and nobody touches it after release (the next acquirer owns it).
 * A pool ignores memory it never lent (callers may hand back a buffer from another pool).
 * In debug mode (tests) released memory is poisoned, a second release throws, and memory written
 * after its release throws when it is lent again.
 */
export interface BufferPool {
  /** A buffer of exactly `length` bytes (contents undefined). */
  acquire(length: number): Buffer;
  /** Hands a buffer from acquire() back; memory this pool did not lend is ignored. */
  release(buffer: Buffer | null | undefined): void;
}

export interface BufferPoolOptions {
  /** Poison released memory and throw on a double release or a write after release. */
  debug?: boolean;
}

/** The byte released memory is filled with in debug mode. */
export const POISON_BYTE = 0xdb;

/** A misuse of a pool found in debug mode: a bug in the caller, never a runtime condition. */
export class BufferPoolMisuse extends Error {
  override name = "BufferPoolMisuse";
}

const poisonRuns = new Map<number, Buffer>();

/** Fills released memory with POISON_BYTE. */
export function poison(bytes: Uint8Array): void {
  bytes.fill(POISON_BYTE);
}

/** Throws when `bytes` (released memory about to be lent again) is not all POISON_BYTE: someone wrote after release. */
export function assertStillPoisoned(bytes: Uint8Array, pool: string): void {
  let run = poisonRuns.get(bytes.length);
  if (run === undefined) poisonRuns.set(bytes.length, (run = Buffer.alloc(bytes.length, POISON_BYTE)));
  if (Buffer.compare(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), run) !== 0) {
    throw new BufferPoolMisuse(`${pool}: a buffer was written after it was released`);
  }
}
