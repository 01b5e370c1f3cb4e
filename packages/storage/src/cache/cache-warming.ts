/**
 * Warming cold chunks: a chunk whose pages may be on disk only (CacheEntry.cold: written by a direct
 * fill, or found at open) is read once off the event loop, through the thread pool into a scratch
 * buffer, so the hot path's synchronous read of it does not wait on the disk.
 */
import type { CacheEntry } from "./cache-entry";
import { readAt } from "./fill-writer";

/** What warming needs of the cache: the entry's descriptor and length, and whether it is still current. */
export interface WarmHost {
  isCurrent(entry: CacheEntry): boolean;
  fdOf(entry: CacheEntry): number;
  chunkLength(index: number): number;
}

const RESOLVED: Promise<void> = Promise.resolve();
/** Warming reads a cold file in pieces of at most this. */
const WARM_PIECE = 1024 * 1024;
/**
 * Warm-ups at once: a reader that meets a run of cold chunks (every chunk is cold after a restart)
 * waits for each in turn; this matches the thread pool's four threads.
 */
const WARM_PARALLEL = 4;

export class CacheWarming {
  readonly #host: WarmHost;
  /** Warm-ups in progress or waiting, one per entry; callers of the same entry share one. */
  readonly #warming = new Map<CacheEntry, Promise<void>>();
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  /** Free scratch buffers (at most WARM_PARALLEL are ever made). */
  readonly #scratch: Buffer[] = [];

  constructor(host: WarmHost) {
    this.#host = host;
  }

  /** Resolves once `entry` is warm (at once if it is not cold). Never rejects: a failing disk shows at the synchronous read. */
  warm(entry: CacheEntry): Promise<void> {
    if (!entry.cold) return RESOLVED;
    const running = this.#warming.get(entry);
    if (running !== undefined) return running;
    const done = this.#slot().then(async () => {
      const scratch = this.#scratch.pop() ?? Buffer.allocUnsafe(WARM_PIECE);
      try {
        await this.#readThrough(entry, scratch);
      } finally {
        this.#scratch.push(scratch);
        this.#running--;
        this.#waiting.shift()?.();
      }
    });
    this.#warming.set(entry, done);
    void done.then(() => this.#warming.delete(entry));
    return done;
  }

  /** Waits until fewer than WARM_PARALLEL warm-ups run, then counts this one. */
  async #slot(): Promise<void> {
    while (this.#running >= WARM_PARALLEL) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#running++;
  }

  async #readThrough(entry: CacheEntry, scratch: Buffer): Promise<void> {
    if (!entry.cold) return;
    try {
      if (this.#host.isCurrent(entry) && !entry.hole) {
        const fd = this.#host.fdOf(entry);
        const length = this.#host.chunkLength(entry.index);
        for (let offset = 0; offset < length;) {
          const { bytesRead } = await readAt(fd, scratch, 0, Math.min(WARM_PIECE, length - offset), offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
        }
      }
    } catch {
      // Evicted or closed meanwhile, or a failing disk: the synchronous read reports what is wrong.
    }
    entry.cold = false;
  }
}
