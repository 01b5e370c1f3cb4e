import type { EvictableChunk } from "./cache-budget";

/** The cache that holds an entry: what the budget's eviction and fd LRU reach through it. */
export interface EntryOwner {
  evict(entry: CacheEntry): void;
  closeFile(entry: CacheEntry): void;
}

/**
 * One chunk present in a volume's disk cache. States:
 * - clean: the file holds generation `generation` of the chunk, exactly as committed;
 * - dirty data: the file holds content written since the last commit;
 * - dirty hole (`hole`): trimmed or zeroed whole; no file, reads as zeros, no object after commit.
 * `version` moves on every change, so a commit can tell whether what it uploaded is still current.
 */
export class CacheEntry implements EvictableChunk {
  dirty = false;
  hole = false;
  generation = 0;
  version = 0;
  /** Open file descriptor, or -1 (the budget keeps a bounded number open). */
  fd = -1;
  /** Bytes the file accounts for in the budget (the chunk length, or 0 for a hole). */
  bytes = 0;
  /** Written since the last FLUSH: its file must be fsynced by the next one. */
  unsynced = false;
  /**
   * The file's pages may not be in the page cache (written with O_DIRECT, or found at open): a read
   * could wait on the disk, so the volume warms it (DiskCache.warm) off the event loop first.
   */
  cold = false;
  /** Dirty, and journalled as landing as this generation (a commit naming this content was sent). */
  landing: number | undefined;
  /** Set while a commit holds this chunk frozen and its upload has not read it yet. */
  frozen: FrozenChunk | undefined;

  constructor(
    private readonly owner: EntryOwner,
    readonly index: number,
  ) {}

  evict(): void {
    this.owner.evict(this);
  }

  closeFile(): void {
    this.owner.closeFile(this);
  }
}

/** A chunk's state captured by a commit's freeze. */
export interface FrozenChunk {
  readonly entry: CacheEntry;
  readonly index: number;
  readonly version: number;
  readonly hole: boolean;
  /** Where the frozen content was moved aside when the chunk was punched before the upload read it. */
  sidePath: string | undefined;
  /**
   * What writes since the freeze overwrote, oldest first: (offset, previous bytes). The frozen
   * content is the current content with these put back newest to oldest, so a 4k write to a
   * frozen 1 MiB chunk costs a 4k read, not a chunk copy.
   */
  undo: Array<{ offset: number; data: Buffer }>;
  undoBytes: number;
  /** A full in-memory copy of the frozen content, taken once the undo log would outgrow it. */
  copy: Buffer | undefined;
  /** The upload has read the content; writes no longer need to copy it aside. */
  taken: boolean;
  /** Settled or given up: its side copy is gone. */
  released: boolean;
}
