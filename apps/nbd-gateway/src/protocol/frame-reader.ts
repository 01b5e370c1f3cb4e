/**
 * Incremental reader over the bytes a socket delivers: the received chunks in a list with a read
 * offset, not concatenated per packet, so a frame inside one chunk is a zero-copy view and only one
 * that straddles chunks is copied. A chunk pushed with `pushTransient` lives in the socket's reused
 * read buffer (server/socket-reads.ts): `view` is for synchronous use only, and `keepRemainder`
 * must copy what is left of it before the read callback returns.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private head = 0;
  private offset = 0;
  private total = 0;
  /** The chunk pushed by pushTransient, while it is still in `chunks`. */
  private transient: Buffer | undefined;

  /** Bytes received and not yet consumed. */
  get available(): number {
    return this.total;
  }

  /** A chunk the reader may keep: it is never reused by its producer. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.keepRemainder();
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /**
   * A chunk its producer will overwrite once the caller returns: consume what you can, then call
   * keepRemainder() before returning.
   */
  pushTransient(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.keepRemainder();
    this.chunks.push(chunk);
    this.total += chunk.length;
    this.transient = chunk;
  }

  /** Copies the unconsumed part of the transient chunk (if any) into memory of the reader's own. */
  keepRemainder(): void {
    const transient = this.transient;
    if (transient === undefined) return;
    this.transient = undefined;
    const last = this.chunks.length - 1;
    if (last < this.head || this.chunks[last] !== transient) return; // consumed already
    const from = last === this.head ? this.offset : 0;
    this.chunks[last] = Buffer.from(transient.subarray(from));
    if (last === this.head) this.offset = 0;
  }

  /**
   * The next `n` bytes (n <= available), consumed, in memory that stays valid: a view into a
   * received chunk when the bytes lie in one kept chunk, else a copy into `allocate(n)` (default:
   * a new buffer).
   */
  take(n: number, allocate: (n: number) => Buffer = Buffer.allocUnsafe): Buffer {
    if (n > this.total) throw new RangeError(`take(${n}) with ${this.total} available`);
    if (n === 0) return EMPTY;
    const first = this.chunks[this.head]!;
    if (first !== this.transient && n <= first.length - this.offset) return this.view(n)!;
    const out = allocate(n);
    this.copyInto(out, 0, n);
    return out;
  }

  /**
   * The next `n` bytes (n <= available) as a view, consumed, when they lie in one chunk; else
   * undefined and nothing consumed. The view may be of a transient chunk: use it before returning.
   */
  view(n: number): Buffer | undefined {
    if (n > this.total) throw new RangeError(`view(${n}) with ${this.total} available`);
    if (n === 0) return EMPTY;
    const first = this.chunks[this.head]!;
    if (n > first.length - this.offset) return undefined;
    const view = first.subarray(this.offset, this.offset + n);
    this.advance(n);
    return view;
  }

  /** Copies the next `n` bytes (n <= available) into `target` at `at`, consumed. */
  copyInto(target: Uint8Array, at: number, n: number): void {
    if (n > this.total) throw new RangeError(`copyInto(${n}) with ${this.total} available`);
    let copied = 0;
    while (copied < n) {
      const chunk = this.chunks[this.head]!;
      const count = Math.min(n - copied, chunk.length - this.offset);
      chunk.copy(target, at + copied, this.offset, this.offset + count);
      copied += count;
      this.advance(count);
    }
  }

  /** Discards up to `n` bytes; returns how many were discarded. */
  skip(n: number): number {
    const count = Math.min(n, this.total);
    let left = count;
    while (left > 0) {
      const chunk = this.chunks[this.head]!;
      const step = Math.min(left, chunk.length - this.offset);
      this.advance(step);
      left -= step;
    }
    return count;
  }

  /** Byte at `index` from the read position, without consuming (index < available). */
  peekUInt8(index: number): number {
    let i = this.head;
    let at = this.offset + index;
    while (at >= this.chunks[i]!.length) {
      at -= this.chunks[i]!.length;
      i++;
    }
    return this.chunks[i]![at]!;
  }

  private advance(n: number): void {
    this.offset += n;
    this.total -= n;
    const chunk = this.chunks[this.head]!;
    if (this.offset === chunk.length) {
      this.chunks[this.head] = EMPTY; // drop the reference so the chunk can be collected
      this.head++;
      this.offset = 0;
      if (this.head === this.chunks.length) {
        this.chunks = [];
        this.head = 0;
      } else if (this.head >= 64) {
        this.chunks = this.chunks.slice(this.head);
        this.head = 0;
      }
    }
  }
}

const EMPTY = Buffer.alloc(0);
