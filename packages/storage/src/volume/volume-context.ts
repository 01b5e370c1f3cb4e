/** What the parts of a volume (reads, writes, fetches, commits) share: one per open volume, made by Volume. */
import type { CacheBudget } from "../cache/cache-budget";
import type { DiskCache } from "../cache/disk-cache";
import type { ChunkStore } from "./chunk-store";
import type { CommittedChunks } from "./committed-chunks";
import type { VolumeCounters, VolumeLogger } from "./volume-options";

export type VolumeState = "open" | "closing" | "closed";

export interface VolumeContext {
  readonly volumeId: string;
  readonly chunkSize: number;
  readonly chunkCount: number;
  /** The last chunk is shorter when the size is not a multiple of the chunk size. */
  chunkLength(index: number): number;
  readonly disk: DiskCache;
  readonly chunks: ChunkStore;
  readonly committed: CommittedChunks;
  readonly budget: CacheBudget;
  readonly logger: VolumeLogger | undefined;
  /** Uploads in flight at once, prefetches, and downloads read-ahead may keep in flight. */
  readonly concurrency: number;
  /** Totals for metrics (Volume.counters). */
  readonly counters: VolumeCounters;
  state(): VolumeState;
  /** Slow-path work close waits for before its final commit. */
  track<T>(promise: Promise<T>): Promise<T>;
}
