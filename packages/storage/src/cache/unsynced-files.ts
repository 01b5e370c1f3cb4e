/**
 * What the next FLUSH must fsync: the chunk files written since the last one, and the chunk
 * directory when files came or went. A sync takes the batch and gives it back if it fails.
 */
import type { CacheEntry } from "./cache-entry";

export interface UnsyncedBatch {
  readonly entries: readonly CacheEntry[];
  readonly directoryChanged: boolean;
}

export class UnsyncedFiles {
  #entries: CacheEntry[] = [];
  #directoryChanged = false;

  get count(): number {
    return this.#entries.length;
  }

  /** Nothing written or renamed since the last sync. */
  get clean(): boolean {
    return this.#entries.length === 0 && !this.#directoryChanged;
  }

  mark(entry: CacheEntry): void {
    if (entry.unsynced) return;
    entry.unsynced = true;
    this.#entries.push(entry);
  }

  markDirectory(): void {
    this.#directoryChanged = true;
  }

  take(): UnsyncedBatch {
    const batch = { entries: this.#entries, directoryChanged: this.#directoryChanged };
    this.#entries = [];
    this.#directoryChanged = false;
    for (const entry of batch.entries) entry.unsynced = false;
    return batch;
  }

  /** A sync failed: these may still be unsynced. */
  restore(batch: UnsyncedBatch): void {
    for (const entry of batch.entries) this.mark(entry);
    if (batch.directoryChanged) this.#directoryChanged = true;
  }
}
