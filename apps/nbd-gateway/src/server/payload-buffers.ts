/**
 * Buffers for WRITE payloads that arrive split across socket reads, handed back once the engine is
 * done with the write (it copies the payload into its cache first) and reused for the next payload
 * of the same size: fresh ones cost major GCs and page faults. One pool serves every connection of
 * the process (`sharedPayloadBuffers`): clients open new connections per job, and a pool per
 * connection started empty each time.
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
