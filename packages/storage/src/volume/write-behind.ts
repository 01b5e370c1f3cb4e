/**
 * Write-behind: a chunk written whole since the last freeze (in any order: chunk-coverage.ts) is
 * uploaded right away, in-process, while the writer goes on, so a large copy reaches the bucket about
 * when it ends (why in-process: docs/performance.md). The commit that follows claims every such
 * upload still holding the chunk's frozen content and uploads the rest; nothing is visible before a
 * commit names it. One that fails is retried by its commit, as a queued job with backoff.
 */
import type { FrozenChunk } from "../cache/cache-entry";
import { GENERATIONS_PER_EPOCH } from "./chunk-layout";
import { ChunkCoverage } from "./chunk-coverage";

/**
 * Uploads ahead written over before their commit (a writer going round one region), after which
 * write-behind waits for the next commit. With `concurrency` uploads ahead at most at once, and
 * candidates dropped at each freeze (the commit uploads them), this bounds the waste.
 */
export const STALE_LIMIT = 8;

/** One chunk uploaded ahead of its commit. */
export interface UploadAhead {
  /** The upload task's commitId, should the commit retry it as a queued job (the worker finds the record by it). */
  readonly id: string;
  readonly index: number;
  readonly generation: number;
  /** The chunk version the upload read; undefined until it did. */
  version: number | undefined;
  /** A freeze came before the upload read the chunk: it uploads this frozen content instead. */
  frozen: FrozenChunk | undefined;
  /** Nothing to upload any more (the chunk stopped being dirty data before the upload read it). */
  cancelled: boolean;
  /** The content read, kept until stored, so a retried attempt sends the same bytes. */
  content: Buffer | null | undefined;
  /** Set once stored (0: all zeros, no object): later calls answer this and store nothing. */
  storedSize: number | undefined;
  /** The attempt running now: a second call joins it. */
  running: Promise<{ storedSize: number }> | undefined;
  /** The stored size once the upload is over; undefined when it failed. Never rejects. */
  result: Promise<number | undefined>;
}

/** What a commit takes over at its freeze. */
export interface CommitHandOver {
  /** The commit's epoch: above the committed one and every epoch uploads ahead used. */
  epoch: number;
  /** Uploads ahead holding exactly the frozen content: the commit waits for them instead of uploading. */
  claimed: Map<number, UploadAhead>;
  /** Uploads ahead of content written over since: their objects are to be deleted once they settle. */
  stale: UploadAhead[];
}

export interface WriteBehindHost {
  /** Reads the chunk and stores it (the volume, in-process). */
  upload(record: UploadAhead): Promise<{ storedSize: number }>;
  /** The chunk is dirty and holds data (not a hole): worth uploading ahead. */
  isDirtyData(index: number): boolean;
  /** The volume still takes writes (no uploads ahead start while it closes). */
  accepting(): boolean;
  failed(error: unknown, record: UploadAhead): void;
}

export interface WriteBehindOptions {
  volumeId: string;
  size: number;
  chunkSize: number;
  salt: number;
  /** The committed epoch at open. */
  committedEpoch: number;
  /** Uploads ahead at once. */
  concurrency: number;
  /** False: no uploads ahead; commits still take their epochs here. */
  enabled: boolean;
  host: WriteBehindHost;
}

export class WriteBehind {
  readonly #options: WriteBehindOptions;
  readonly #coverage: ChunkCoverage;
  /** Uploads ahead begun since the last freeze, by chunk. */
  readonly #pending = new Map<number, UploadAhead>();
  #stale: UploadAhead[] = [];
  readonly #candidates = new Set<number>();
  #running = 0;
  /**
   * Naming: a key (generation = epoch * GENERATIONS_PER_EPOCH + salt) is never written with two contents, since a
   * late retry of the first PUT could land over the second. So epochs come from this one counter:
   * uploads ahead take a reserved epoch (a new one when a chunk would get its second upload at it),
   * and a commit takes the latest of those, or the one after; commits may skip epochs
   * (ChunkCommit.previousEpoch). The GC's orphan rule holds: when a commit at epoch N lands, every
   * upload ahead it did not claim was given up (stale: deleted) and every later one is named above N.
   */
  #nextEpoch: number;
  /** The epoch uploads ahead use now, and the chunks that already have one at it. */
  #aheadEpoch: number | undefined;
  readonly #usedAtAheadEpoch = new Set<number>();
  #staleSinceFreeze = 0;
  #pumpQueued = false;
  #serial = 0;

  constructor(options: WriteBehindOptions) {
    this.#options = options;
    this.#coverage = new ChunkCoverage({ chunkSize: options.chunkSize, size: options.size });
    this.#nextEpoch = options.committedEpoch + 1;
  }

  /** Uploads ahead running now (stats). */
  get running(): number {
    return this.#running;
  }

  get paused(): boolean {
    return this.#staleSinceFreeze >= STALE_LIMIT;
  }

  /**
   * Called for every data write of [offset, end) after it was applied: uploads ahead of chunks it
   * changed become stale, and the chunks it completed (every byte written since the last freeze)
   * become candidates.
   */
  noteWrite(offset: number, end: number): void {
    if (!this.#options.enabled) return;
    const { chunkSize } = this.#options;
    if (this.#pending.size > 0) {
      const last = Math.floor((end - 1) / chunkSize);
      for (let index = Math.floor(offset / chunkSize); index <= last; index++) {
        const record = this.#pending.get(index);
        // Not read yet: it will read this write too.
        if (record === undefined || record.version === undefined) continue;
        this.#pending.delete(index);
        this.#stale.push(record);
        if (++this.#staleSinceFreeze === STALE_LIMIT) this.#candidates.clear();
      }
    }
    const completed = this.#coverage.note(offset, end);
    if (completed.length === 0 || this.paused) return;
    for (const index of completed) this.#candidates.add(index);
    this.#queuePump();
  }

  /**
   * At a commit's freeze: hands over every upload ahead (claimed when it holds the frozen content or
   * has not read yet, else stale) and picks the commit's epoch. Candidates are dropped: the commit
   * uploads them. The epoch is the one uploads ahead use now when no chunk the commit uploads itself
   * already has an object at it (the usual case: every chunk written once, uploaded ahead once), so a
   * commit still moves the epoch by one; else the next.
   */
  takeForCommit(committedEpoch: number, frozen: ReadonlyMap<number, FrozenChunk>): CommitHandOver {
    const claimed = new Map<number, UploadAhead>();
    const stale = this.#stale;
    this.#stale = [];
    for (const [index, record] of this.#pending) {
      const chunk = frozen.get(index);
      if (chunk === undefined || chunk.hole) {
        if (record.version === undefined) record.cancelled = true;
        stale.push(record);
      } else if (record.version === undefined) {
        record.frozen = chunk;
        claimed.set(index, record);
      } else if (record.version === chunk.version) {
        claimed.set(index, record);
      } else {
        stale.push(record);
      }
    }
    this.#pending.clear();
    let epoch = Math.max(this.#nextEpoch, committedEpoch + 1);
    if (this.#aheadEpoch !== undefined) {
      epoch = this.#aheadEpoch;
      for (const [index, chunk] of frozen) {
        if (!chunk.hole && !claimed.has(index) && this.#usedAtAheadEpoch.has(index)) {
          epoch = this.#aheadEpoch + 1;
          break;
        }
      }
    }
    this.#nextEpoch = epoch + 1;
    this.#aheadEpoch = undefined;
    this.#usedAtAheadEpoch.clear();
    this.#staleSinceFreeze = 0;
    this.#candidates.clear();
    this.#coverage.reset();
    return { epoch, claimed, stale };
  }

  /** A commit at `epoch` stored nothing and named nothing: its epoch is free for the next one. */
  returnEpoch(epoch: number): void {
    if (this.#nextEpoch === epoch + 1 && this.#aheadEpoch === undefined) this.#nextEpoch = epoch;
  }

  #queuePump(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    // Not on the write's own path: queueing an upload may cost a Redis round trip.
    setImmediate(() => {
      this.#pumpQueued = false;
      this.#pump();
    });
  }

  #pump(): void {
    const { concurrency, host } = this.#options;
    while (this.#running < concurrency && this.#candidates.size > 0 && !this.paused && host.accepting()) {
      const index = this.#candidates.values().next().value as number;
      this.#candidates.delete(index);
      if (this.#pending.has(index) || !host.isDirtyData(index)) continue;
      this.#start(index);
    }
  }

  #start(index: number): void {
    const { volumeId, salt, host } = this.#options;
    if (this.#aheadEpoch === undefined || this.#usedAtAheadEpoch.has(index)) {
      this.#aheadEpoch = this.#nextEpoch++;
      this.#usedAtAheadEpoch.clear();
    }
    this.#usedAtAheadEpoch.add(index);
    const record: UploadAhead = {
      id: `${volumeId}:ahead:${++this.#serial}`,
      index,
      generation: this.#aheadEpoch * GENERATIONS_PER_EPOCH + salt,
      version: undefined,
      frozen: undefined,
      cancelled: false,
      content: undefined,
      storedSize: undefined,
      running: undefined,
      result: Promise.resolve(undefined),
    };
    this.#pending.set(index, record);
    this.#running++;
    record.result = host.upload(record).then(
      ({ storedSize }) => storedSize,
      (error: unknown) => {
        host.failed(error, record);
        return undefined;
      },
    );
    void record.result.finally(() => {
      this.#running--;
      this.#queuePump();
    });
  }
}
