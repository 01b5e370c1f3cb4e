/**
 * Fetches of committed chunks from the store: one per chunk at a time, shared by every caller that
 * wants the same generation. A fetched chunk that is still current enters the disk cache as a
 * background fill; its bytes are reused memory, read by the awaiting callers at once and recycled.
 */
import { StorageError } from "../errors";
import type { VolumeContext } from "./volume-context";

export class ChunkFetches {
  readonly #ctx: VolumeContext;
  /** In-flight fetches, one per chunk, tagged with the generation they fetch. */
  readonly #loading = new Map<number, { generation: number; promise: Promise<Buffer | undefined> }>();

  constructor(ctx: VolumeContext) {
    this.#ctx = ctx;
  }

  get inFlight(): number {
    return this.#loading.size;
  }

  isLoading(index: number): boolean {
    return this.#loading.has(index);
  }

  /** Forgets every fetch (the volume closed: their results are not cached). */
  clear(): void {
    this.#loading.clear();
  }

  /**
   * Fetches one generation of a chunk, sharing the request with concurrent callers. The result
   * enters the cache (clean, written in the background: close waits for it) only if it is still
   * the current, un-rewritten content. Resolves undefined when the object vanished because a
   * commit superseded it meanwhile.
   *
   * The bytes are reused memory (see #recycle): whoever awaits this reads them at once, never
   * after a later await.
   */
  fetch(index: number, generation: number): Promise<Buffer | undefined> {
    const ctx = this.#ctx;
    const inflight = this.#loading.get(index);
    if (inflight !== undefined && inflight.generation === generation) return inflight.promise;
    const promise = ctx.chunks.load(index, generation, ctx.chunkLength(index)).then((data) => {
      const current = ctx.committed.get(index)?.generation === generation;
      if (data === undefined) {
        if (current) throw new StorageError("EIO", `chunk ${index} generation ${generation} of ${ctx.volumeId} is missing from the store`);
        return undefined;
      }
      if (current && ctx.state() !== "closed" && ctx.disk.get(index) === undefined && ctx.disk.fillClean(index, generation, data)) {
        const settled = ctx.disk.fillSettled(index);
        void ctx.track(settled);
        void settled.then(() => ctx.chunks.recycle(data));
      } else {
        this.#recycle(data);
      }
      return data;
    });
    const entry = { generation, promise };
    this.#loading.set(index, entry);
    const forget = () => {
      if (this.#loading.get(index) === entry) this.#loading.delete(index);
    };
    promise.then(forget, forget);
    return promise;
  }

  /**
   * The fetched bytes go back to the chunk store for the next download once every reader awaiting
   * the fetch has copied them: those continuations all run as microtasks right after the fetch
   * resolves, so before the next turn of the event loop. A fill keeps its bytes until its file is
   * written (fetch recycles them then).
   */
  #recycle(data: Buffer): void {
    setImmediate(() => this.#ctx.chunks.recycle(data));
  }
}
