/**
 * Reply buffers, reused once the socket has written them (the write callback), so serving reads
 * allocates nothing in steady state. Every fresh Buffer counts as V8 external memory, and enough of
 * it starts a major GC of the whole heap: serving 1 GiB/s of reads from fresh buffers kept a
 * collector busy, and on these VMs fresh pages also cost ~2.5 ms per MiB to touch.
 *
 * - Small replies (a 4 KiB read and its header) are slices of 256 KiB slabs. A slab counts the
 *   slices still out; once it is full and all came back, it is used again from the start.
 * - Larger replies come from a pool by exact size (clients read with one request size), one for
 *   the whole process: each connection starting its own paid for fresh pages on every new
 *   connection (see payload-buffers.ts).
 *
 * A buffer that is never released (a failed read, a socket that died) is simply left to the GC.
 */
import { PayloadBufferPool } from "./payload-buffers";

const SLAB_SIZE = 256 * 1024;
const LARGEST_SLICED = 64 * 1024;
/** Full slabs kept for reuse once all their slices came back. */
const MAX_SPARE_SLABS = 8;
/** Replies above LARGEST_SLICED, of every connection. */
const largeReplyBuffers = new PayloadBufferPool(64 * 1024 * 1024);

interface Slab {
  buffer: Buffer;
  used: number;
  /** Slices handed out and not released yet. */
  outstanding: number;
}

export class ReplyBufferPool {
  #slab: Slab | undefined;
  readonly #spare: Slab[] = [];
  /** A slice's slab, by the memory they share. */
  readonly #slabOf = new WeakMap<ArrayBufferLike, Slab>();

  alloc(size: number): Buffer {
    if (size > LARGEST_SLICED) return largeReplyBuffers.acquire(size);
    let slab = this.#slab;
    if (slab === undefined || slab.used + size > SLAB_SIZE) slab = this.#slab = this.#freshSlab(slab);
    const buf = slab.buffer.subarray(slab.used, slab.used + size);
    slab.used = (slab.used + size + 7) & ~7; // keep slices 8-byte aligned
    slab.outstanding++;
    return buf;
  }

  /** `buf` came from alloc() and nothing reads it any more (its socket write completed). */
  release(buf: Buffer): void {
    if (buf.length > LARGEST_SLICED) {
      largeReplyBuffers.release(buf);
      return;
    }
    const slab = this.#slabOf.get(buf.buffer);
    if (slab === undefined || slab.outstanding === 0) return;
    slab.outstanding--;
    if (slab.outstanding === 0 && slab !== this.#slab && this.#spare.length < MAX_SPARE_SLABS) {
      slab.used = 0;
      this.#spare.push(slab);
    }
  }

  /** The slab after `full`: itself again when every slice came back, else a spare or a new one. */
  #freshSlab(full: Slab | undefined): Slab {
    if (full !== undefined && full.outstanding === 0) {
      full.used = 0;
      return full;
    }
    const spare = this.#spare.pop();
    if (spare !== undefined) return spare;
    const slab: Slab = { buffer: Buffer.allocUnsafeSlow(SLAB_SIZE), used: 0, outstanding: 0 };
    this.#slabOf.set(slab.buffer.buffer, slab);
    return slab;
  }
}
