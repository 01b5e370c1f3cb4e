/**
 * Reply buffers, reused once the socket has written them, so serving reads allocates nothing in
 * steady state (fresh Buffers start major GCs and fault in fresh pages). Small replies are slices of
 * 256 KiB slabs, reused once full and all back; larger ones come by exact size from one pool for the
 * process (see payload-buffers.ts). A buffer never released (failed read, dead socket) is left to GC.
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
