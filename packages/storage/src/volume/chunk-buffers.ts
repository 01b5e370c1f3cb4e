/**
 * The chunk-sized buffers of every volume in this process: content read for upload, objects
 * downloaded, and decoded chunks. One set per process, not per volume, because memory new to a
 * process is what costs most (docs/performance.md): a gateway in service reuses megabytes it touched
 * long ago, whichever volume asks.
 *
 * The pools' rule holds across volumes: a buffer is released once, by whoever acquired it, when
 * nothing reads it any more.
 */
import { DirectIoBufferPool } from "../cache/direct-io-buffers";
import { SharedBufferPool } from "../codec/shared-buffers";

/** Content read from the cache for upload (shared with the codec workers, which read it in place). */
export const uploadBuffers = new SharedBufferPool({ maxFree: 64 });

/** Downloaded objects land in these (the codec workers decode from them in place). */
export const downloadBuffers = new SharedBufferPool({ maxFree: 64 });

/** Decoded chunks: page-aligned, so the disk cache can write them with O_DIRECT. */
export const decodedChunkBuffers = new DirectIoBufferPool();
