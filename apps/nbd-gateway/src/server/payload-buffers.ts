/**
 * Buffers for WRITE payloads that arrive split across socket reads (every large write: the socket
 * delivers 64 KiB at a time), handed back once the engine finished with the write and reused for
 * the next payload of the same size. A fresh megabyte per 1 MiB write made V8 count that much new
 * external memory each time (more major GCs) and, on these VMs, touch fresh pages, which costs
 * ~2.5 ms per MiB (bench/README.md). The engine copies a payload into its cache before the write
 * resolves, so nothing holds a payload once it is released.
 *
 * One pool serves every connection of the process (`sharedPayloadBuffers`): a pool per connection
 * started empty, and a client opens new connections for each job (nbdcopy: 4 connections with 64
 * requests of 256 KiB in flight each, 64 MiB of buffers), so every copy paid for fresh pages
 * again: 0.76 ms per 256 KiB buffer filled for the first time here, 0.02 ms reused.
 */
const SMALLEST_POOLED = 64 * 1024;

export class PayloadBufferPool {
  readonly #free = new Map<number, Buffer[]>();
  #freeBytes = 0;

  /** At most this many bytes wait for reuse; beyond it released buffers go to the GC. */
  constructor(readonly maxFreeBytes = 32 * 1024 * 1024) {}

  acquire(size: number): Buffer {
    if (size < SMALLEST_POOLED) return Buffer.allocUnsafe(size);
    const reused = this.#free.get(size)?.pop();
    if (reused === undefined) return Buffer.allocUnsafeSlow(size);
    this.#freeBytes -= size;
    return reused;
  }

  /** `buffer` came from acquire() and nothing reads it any more. */
  release(buffer: Buffer): void {
    const size = buffer.length;
    if (size < SMALLEST_POOLED || this.#freeBytes + size > this.maxFreeBytes) return;
    let list = this.#free.get(size);
    if (list === undefined) this.#free.set(size, (list = []));
    list.push(buffer);
    this.#freeBytes += size;
  }
}

/** WRITE payloads of all connections. */
export const sharedPayloadBuffers = new PayloadBufferPool(64 * 1024 * 1024);
