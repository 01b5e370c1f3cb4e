import type { Clock } from "../util/clock";
import type { CacheBudget } from "./cache-budget";
import type { FillWriter } from "./fill-writer";

/** How DiskCache.open opens one volume's cache. */
export interface DiskCacheOptions {
  /** This volume's cache directory (created if missing). */
  dir: string;
  budget: CacheBudget;
  /** Bytes of chunk `index` (the last chunk may be short). */
  chunkLength(index: number): number;
  chunkCount: number;
  /** Memory for frozen content before it goes to side files (default 64 MiB; tests lower it). */
  maxFrozenMemoryBytes?: number;
  /** Bytes of fetched chunks held back or being written into the cache (default 96 MiB, at least one chunk). */
  maxFillingBytes?: number;
  /** Writes a fill's file off the event loop (default: fs.write in the thread pool; tests hold it). */
  fillWriter?: FillWriter;
  /** Page-aligned fills are written with O_DIRECT after a delay (default true where the file system takes O_DIRECT). See cache-fills.ts. */
  directFills?: boolean;
  /**
   * Large page-aligned writes into a new or cold chunk, and an upload's read of a cold chunk, use
   * O_DIRECT where the file system takes it (default false). It suits a volume whose writes wait for
   * the bucket anyway (cloud durability), not one whose writes should be read back warm. See direct-pieces.ts.
   */
  directWrites?: boolean;
  /** Bytes of direct fills held back before the oldest is written (default 32 MiB). */
  fillDelayBytes?: number;
  /**
   * The owner syncs only at close, not at every flush (cloud durability): the cache is then kept
   * under a reboot marker (see reboot-marker.ts) and starts empty after a reboot that found it
   * unsynced. Ignored where the boot cannot be told (`syncsLazily` then says false).
   */
  lazySync?: boolean;
  /** This boot's id (default: the kernel's; null: unknown). Tests set it to play a reboot. */
  bootId?: string | null;
  /** Times the hold of direct fills (default: the system clock). */
  clock?: Clock;
}
