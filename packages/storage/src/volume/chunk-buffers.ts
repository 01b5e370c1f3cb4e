/**
 * The chunk-sized buffers of the volumes that share it: content read for upload, objects
 * downloaded, and decoded chunks. A gateway makes one set and gives it to every volume, not one per
 * volume, because memory new to a process is what costs most (docs/performance.md): a gateway in
 * service reuses megabytes it touched long ago, whichever volume asks. The pools' rule
 * (util/buffer-pool.ts) holds across volumes.
 */
import { DirectIoBufferPool } from "../cache/direct-io-buffers";
import { SharedBufferPool } from "../codec/shared-buffers";
import type { BufferPoolOptions } from "../util/buffer-pool";

export class ChunkBuffers {
  /** Content read from the cache for upload (shared with the codec workers, which read it in place). */
  readonly upload: SharedBufferPool;
  /** Downloaded objects land in these (the codec workers decode from them in place). */
  readonly download: SharedBufferPool;
  /** Decoded chunks: page-aligned, so the disk cache can write them with O_DIRECT. */
  readonly decoded: DirectIoBufferPool;

  /** `debug`: poison released buffers and throw on misuse (tests). */
  constructor(options: BufferPoolOptions = {}) {
    this.upload = new SharedBufferPool({ maxFree: 64, debug: options.debug });
    this.download = new SharedBufferPool({ maxFree: 64, debug: options.debug });
    this.decoded = new DirectIoBufferPool({ debug: options.debug });
  }
}
