/**
 * Incremental reader over the Buffers a socket delivers. It keeps the received chunks in a list
 * with a read offset instead of concatenating the stream per packet (concatenation capped 1 MiB
 * writes at ~1 GB/s, see BENCHMARKS.md): a frame that lies inside one chunk is returned as a
 * zero-copy view; only a frame that straddles chunk boundaries is copied.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private head = 0;
  private offset = 0;
  private total = 0;

  /** Bytes received and not yet consumed. */
  get available(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /**
   * The next `n` bytes (n <= available), consumed. A view into the received chunk when the bytes
   * are contiguous, else a copy into `allocate(n)` (default: a new buffer). Views stay valid:
   * chunks are never reused.
   */
  take(n: number, allocate: (n: number) => Buffer = Buffer.allocUnsafe): Buffer {
    if (n > this.total) throw new RangeError(`take(${n}) with ${this.total} available`);
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[this.head]!;
    const inFirst = first.length - this.offset;
    if (n <= inFirst) {
      const view = first.subarray(this.offset, this.offset + n);
      this.advance(n);
      return view;
    }
    const out = allocate(n);
    this.copyInto(out, 0, n);
    return out;
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
