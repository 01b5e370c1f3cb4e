/**
 * One budget shared by every volume's disk cache in a gateway: a target size (clean chunk files
 * evicted least-recently-used across volumes; dirty ones never, so the cache stays within target +
 * dirty limit), the dirty limit (writes wait past it; past half, every volume with dirty data is
 * asked to commit), a bounded LRU of open descriptors, and dormant caches (volumes not open, evicted
 * first, whole and oldest first, unless they hold uncommitted data).
 */
import { rmSync } from "node:fs";

/**
 * A chunk file the budget tracks. The budget owns this interface so that it knows nothing of the
 * cache's entries: `evict` must call removeClean and `closeFile` must call fileClosed.
 */
export interface EvictableChunk {
  /** Removes a clean chunk's file (a dirty one is left alone). */
  evict(): void;
  /** Closes its descriptor; the file stays. */
  closeFile(): void;
}

export interface CacheBudgetOptions {
  /** Bytes of chunk files to keep across all volumes (clean ones are evicted past it). */
  targetBytes: number;
  /** Bytes of uncommitted chunks beyond which writes wait. */
  dirtyLimitBytes: number;
  /**
   * Bytes of uncommitted chunks one volume may hold (default: the whole dirty limit). Below the
   * dirty limit, it keeps a volume whose commits fail from taking every other volume's room.
   */
  volumeDirtyLimitBytes?: number;
  /** Chunk files kept open at once (default 1024). */
  maxOpenFiles?: number;
}

/** A volume registered with the budget: asked to commit when dirty bytes pass half the limit. */
export interface BudgetMember {
  requestCommit(): void;
  readonly dirtyBytes: number;
}

export class CacheBudget {
  readonly targetBytes: number;
  readonly dirtyLimitBytes: number;
  readonly volumeDirtyLimitBytes: number;
  readonly maxOpenFiles: number;
  private cached = 0;
  private dirty = 0;
  // LRUs are insertion-ordered Sets (delete + add = most recent): O(1), no allocation per touch.
  private readonly clean = new Set<EvictableChunk>();
  private readonly openFiles = new Set<EvictableChunk>();
  private readonly members = new Set<BudgetMember>();
  /** Dormant cache directories in the order they went dormant, with their bytes on disk. */
  private readonly dormant = new Map<string, { bytes: number; evictable: boolean }>();
  private waiters: Array<() => void> = [];

  constructor(options: CacheBudgetOptions) {
    this.targetBytes = Math.max(0, options.targetBytes);
    this.dirtyLimitBytes = Math.max(1, options.dirtyLimitBytes);
    this.volumeDirtyLimitBytes = Math.min(this.dirtyLimitBytes, Math.max(1, options.volumeDirtyLimitBytes ?? this.dirtyLimitBytes));
    this.maxOpenFiles = Math.max(4, options.maxOpenFiles ?? 1024);
  }

  get cachedBytes(): number {
    return this.cached;
  }

  get dirtyBytes(): number {
    return this.dirty;
  }

  register(member: BudgetMember): void {
    this.members.add(member);
  }

  unregister(member: BudgetMember): void {
    this.members.delete(member);
    this.wake();
  }

  // ---- bytes and eviction --------------------------------------------------------------------

  addCached(bytes: number): void {
    this.cached += bytes;
  }

  removeCached(bytes: number): void {
    this.cached -= bytes;
  }

  addClean(entry: EvictableChunk): void {
    this.clean.add(entry);
  }

  touchClean(entry: EvictableChunk): void {
    this.clean.delete(entry);
    this.clean.add(entry);
  }

  removeClean(entry: EvictableChunk): void {
    this.clean.delete(entry);
  }

  /** A volume's cache directory whose engine closed (or that was found on disk at start). */
  addDormant(dir: string, bytes: number, evictable: boolean): void {
    this.removeDormant(dir);
    this.dormant.set(dir, { bytes, evictable });
    this.cached += bytes;
    this.evictToTarget();
  }

  /** The directory is in use again (its cache reopened it and counts its files itself) or gone. */
  removeDormant(dir: string): void {
    const found = this.dormant.get(dir);
    if (found === undefined) return;
    this.dormant.delete(dir);
    this.cached -= found.bytes;
  }

  /** Dormant directories holding uncommitted data (a gateway stopped before it uploaded them). */
  get pinnedDormant(): string[] {
    return [...this.dormant].filter(([, d]) => !d.evictable).map(([dir]) => dir);
  }

  /** Evicts whole clean dormant caches, then least-recently-used clean chunks, until within the target. */
  evictToTarget(): void {
    for (const [dir, { bytes, evictable }] of this.dormant) {
      if (this.cached <= this.targetBytes) return;
      if (!evictable) continue;
      rmSync(dir, { recursive: true, force: true });
      this.dormant.delete(dir);
      this.cached -= bytes;
    }
    for (const entry of this.clean) {
      if (this.cached <= this.targetBytes) return;
      entry.evict(); // removes it from `clean` (safe while iterating a Set)
    }
  }

  /** Evicts every clean chunk (the disk is full: make room for dirty data). Returns bytes freed. */
  evictAllClean(): number {
    const before = this.cached;
    for (const entry of this.clean) entry.evict();
    return before - this.cached;
  }

  // ---- open files ----------------------------------------------------------------------------

  fileOpened(entry: EvictableChunk): void {
    this.openFiles.add(entry);
    if (this.openFiles.size <= this.maxOpenFiles) return;
    for (const oldest of this.openFiles) {
      if (oldest === entry) continue;
      oldest.closeFile(); // removes it from `openFiles`
      if (this.openFiles.size <= this.maxOpenFiles) return;
    }
  }

  touchFile(entry: EvictableChunk): void {
    this.openFiles.delete(entry);
    this.openFiles.add(entry);
  }

  fileClosed(entry: EvictableChunk): void {
    this.openFiles.delete(entry);
  }

  get openFileCount(): number {
    return this.openFiles.size;
  }

  // ---- dirty bytes and backpressure ------------------------------------------------------------

  addDirty(bytes: number): void {
    this.dirty += bytes;
    if (this.dirty > this.dirtyLimitBytes / 2) {
      for (const member of this.members) if (member.dirtyBytes > 0) member.requestCommit();
    }
  }

  removeDirty(bytes: number): void {
    this.dirty -= bytes;
    // Waiters re-check: the gateway's total or one volume's own dirty bytes may have room now.
    this.wake();
  }

  /**
   * Room for more dirty data in the gateway and in a volume holding `volumeDirtyBytes` (a write
   * admitted now may pass either limit by its own size).
   */
  hasDirtyRoom(volumeDirtyBytes = 0): boolean {
    return this.dirty < this.dirtyLimitBytes && volumeDirtyBytes < this.volumeDirtyLimitBytes;
  }

  /** Resolves once there is room (see hasDirtyRoom), or `stillWanted` throws. */
  async waitForDirtyRoom(stillWanted: () => void, volume?: BudgetMember): Promise<void> {
    while (!this.hasDirtyRoom(volume?.dirtyBytes)) {
      stillWanted(); // throws when the waiter's volume is closing
      if (volume !== undefined && volume.dirtyBytes >= this.volumeDirtyLimitBytes) volume.requestCommit();
      else for (const member of this.members) if (member.dirtyBytes > 0) member.requestCommit();
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Wakes every waiter to re-check (after each commit attempt, and when a volume closes). */
  wake(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
