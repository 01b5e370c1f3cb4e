/**
 * Carves small reply buffers out of larger slabs, so a 4 KiB read reply costs a slice instead of
 * a fresh allocation (Node pools only allocations under 4 KiB, and a read reply is 4 KiB + header).
 * A slab is reclaimed by the GC once no reply carved from it is still queued on the socket.
 */
const SLAB_SIZE = 256 * 1024;
const LARGEST_POOLED = 64 * 1024;

export class ReplyBufferPool {
  private slab: Buffer | undefined;
  private used = 0;

  alloc(size: number): Buffer {
    if (size > LARGEST_POOLED) return Buffer.allocUnsafe(size);
    if (!this.slab || this.used + size > SLAB_SIZE) {
      this.slab = Buffer.allocUnsafe(SLAB_SIZE);
      this.used = 0;
    }
    const buf = this.slab.subarray(this.used, this.used + size);
    this.used = (this.used + size + 7) & ~7; // keep slices 8-byte aligned
    return buf;
  }
}
