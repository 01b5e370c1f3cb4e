/**
 * The write path of one volume's disk cache: pieces written into chunk files, whole chunks punched
 * to holes, fetched chunks adopted dirty. A chunk is journalled dirty (CacheEntries) before its file
 * is first touched; a full disk evicts every clean chunk and tries once more, then fails with
 * StorageError("ENOSPC"), leaving the journal and every other chunk as they were.
 */
import { closeSync, ftruncateSync, rmSync } from "node:fs";
import type { CacheBudget } from "./cache-budget";
import type { CacheEntries } from "./cache-entries";
import type { CacheEntry } from "./cache-entry";
import { fileError, isNoSpace, noSpace, writeFully } from "./cache-files";
import type { DirectPieces } from "./direct-pieces";
import type { FrozenContent } from "./frozen-content";
import type { SpareFiles } from "./spare-files";
import type { UnsyncedFiles } from "./unsynced-files";

/** A piece of one chunk to write: `length` bytes at `within`, from `source` at `sourceOffset` (zeros when null). */
export interface ChunkWrite {
  readonly index: number;
  readonly within: number;
  readonly length: number;
  readonly source: Buffer | null;
  readonly sourceOffset: number;
}

/** What the write path works on: the disk cache's parts. */
export interface CacheWriteParts {
  /** The cache directory, for error messages. */
  dir: string;
  entries: CacheEntries;
  budget: CacheBudget;
  spares: SpareFiles;
  frozen: FrozenContent;
  unsynced: UnsyncedFiles;
  /** O_DIRECT for large writes into cold chunks. */
  directPieces: DirectPieces;
  chunkLength(index: number): number;
  /** Forgets a fill in flight: the chunk is about to change, and a clean fill landing later would undo it. */
  cancelFill(index: number): void;
}

const ZEROS = Buffer.alloc(64 * 1024);

export class CacheWrites {
  constructor(private readonly parts: CacheWriteParts) {}

  /**
   * True when a write of `length` bytes at `within` of chunk `index` needs the chunk's current
   * content fetched first: part of a `committed` chunk that is not cached.
   */
  needsContent(index: number, within: number, length: number, committed: boolean): boolean {
    return committed && !this.parts.entries.has(index) && !(within === 0 && length === this.parts.chunkLength(index));
  }

  /** Writes a piece; false, changing nothing, when needsContent() says the content must be fetched first. */
  write(piece: ChunkWrite, committed: boolean): boolean {
    if (this.needsContent(piece.index, piece.within, piece.length, committed)) return false;
    this.withSpace(() => this.applyWrite(piece));
    return true;
  }

  /** Makes a fetched committed chunk dirty with its content (the cache could not keep it clean). */
  adoptFetched(index: number, data: Buffer): void {
    const { entries, spares, budget, unsynced } = this.parts;
    if (entries.has(index)) return;
    this.parts.cancelFill(index);
    this.withSpace(() => {
      const file = entries.filePath(index);
      const fd = spares.create(file, (created) => writeFully(created, data, 0, data.length, 0));
      let entry: CacheEntry;
      try {
        entry = entries.newDirty(index);
      } catch (error) {
        closeSync(fd);
        rmSync(file, { force: true });
        throw error;
      }
      entry.bytes = data.length;
      entry.fd = fd;
      entry.version = entries.nextVersion();
      entries.set(entry);
      budget.fileOpened(entry);
      unsynced.markDirectory();
      unsynced.mark(entry);
      entries.account(entry, +1);
      if (budget.cachedBytes > budget.targetBytes) budget.evictToTarget();
    });
  }

  /** The whole chunk becomes a hole: no file now, no object after the next commit. */
  punchHole(index: number, committed: boolean): void {
    const { entries } = this.parts;
    let entry = entries.get(index);
    if (entry === undefined) {
      if (!committed) return; // already a hole everywhere
      entry = this.newDirtyHole(index);
    } else if (!entry.hole) {
      entries.makeDirty(entry);
      entries.closeFile(entry);
      // Frozen content not read by its upload yet: keep it aside instead of deleting it.
      if (entry.frozen !== undefined) this.parts.frozen.moveAside(entry);
      else this.parts.spares.retire(entries.filePath(index));
      entries.account(entry, -1);
      entry.hole = true;
      entry.bytes = 0;
      entries.account(entry, +1);
      this.parts.unsynced.markDirectory();
    }
    entry.version = entries.nextVersion();
  }

  /** A chunk with no entry becomes a dirty hole, journalled before anything else happens to it. */
  private newDirtyHole(index: number): CacheEntry {
    this.parts.cancelFill(index);
    const entry = this.parts.entries.newDirty(index);
    entry.hole = true;
    this.parts.entries.set(entry);
    this.parts.entries.account(entry, +1);
    return entry;
  }

  private applyWrite(piece: ChunkWrite): void {
    const { entries } = this.parts;
    const { index, within, length, source, sourceOffset } = piece;
    let entry = entries.get(index);
    if (entry === undefined) {
      if (source === null) return; // zeros into a chunk that is a hole everywhere
      entry = this.newDirtyHole(index);
      entry.version = entries.nextVersion();
    }
    if (entry.hole) {
      if (source === null) return; // zeros into a hole
      entries.makeDirty(entry);
      // The piece is written before the file takes the chunk's name: a refused write leaves the hole.
      let direct = false;
      this.materialize(entry, (fd) => (direct = this.writePiece(fd, piece, true)));
      entry.cold = direct;
    } else if (source !== null && entry.frozen !== undefined && within === 0 && length === this.parts.chunkLength(index)) {
      entries.makeDirty(entry);
      this.replaceFrozen(entry, source, sourceOffset);
    } else {
      entries.makeDirty(entry);
      this.parts.frozen.preserve(entry, within, length);
      const fd = entries.fdOf(entry);
      if (source === null) {
        for (let done = 0; done < length;) {
          const n = Math.min(ZEROS.length, length - done);
          writeFully(fd, ZEROS, 0, n, within + done);
          done += n;
        }
      } else {
        this.writePiece(fd, piece, entry.cold);
      }
    }
    entry.version = entries.nextVersion();
    this.parts.unsynced.mark(entry);
  }

  /**
   * Writes a piece into a chunk's file open as `fd`: with O_DIRECT when the file's pages are not
   * cached (`cold`: a new file, or a cold chunk) and the piece is large and page-aligned, else
   * buffered. True: it went direct (the file stays cold).
   */
  private writePiece(fd: number, piece: ChunkWrite, cold: boolean): boolean {
    const { within, length, sourceOffset } = piece;
    const source = piece.source!;
    const { directPieces } = this.parts;
    if (cold && directPieces.takes(within, length) && directPieces.write(fd, source, sourceOffset, length, within)) return true;
    writeFully(fd, source, sourceOffset, length, within);
    return false;
  }

  /** A hole gets a (sparse, all-zero) file of the chunk's length, `fill` applied before it is named. */
  private materialize(entry: CacheEntry, fill: (fd: number) => void): void {
    const { entries, budget } = this.parts;
    const length = this.parts.chunkLength(entry.index);
    const fd = this.parts.spares.create(entries.filePath(entry.index), (created) => {
      ftruncateSync(created, length);
      fill(created);
    });
    entries.account(entry, -1);
    entry.hole = false;
    entry.bytes = length;
    entry.fd = fd;
    entries.account(entry, +1);
    budget.fileOpened(entry);
    this.parts.unsynced.markDirectory();
    if (budget.cachedBytes > budget.targetBytes) budget.evictToTarget();
  }

  /**
   * A whole-chunk write to a frozen chunk: the frozen content keeps the old file (a hard link
   * aside) and the new content becomes a new file renamed over the chunk's name. At every point
   * of a crash the chunk's name holds either the old or the new content.
   */
  private replaceFrozen(entry: CacheEntry, source: Buffer, sourceOffset: number): void {
    const { entries } = this.parts;
    const length = this.parts.chunkLength(entry.index);
    const undoLink = this.parts.frozen.linkAside(entry);
    entries.closeFile(entry);
    try {
      entry.fd = this.parts.spares.create(entries.filePath(entry.index), (created) => {
        ftruncateSync(created, length);
        writeFully(created, source, sourceOffset, length, 0);
      });
    } catch (error) {
      undoLink();
      throw error;
    }
    this.parts.budget.fileOpened(entry);
    this.parts.unsynced.markDirectory();
  }

  /** Runs a disk change; on ENOSPC evicts every clean chunk and tries once more. */
  private withSpace(change: () => void): void {
    const { dir, budget } = this.parts;
    try {
      change();
      return;
    } catch (error) {
      if (!isNoSpace(error)) throw fileError(error, `writing the cache of ${dir}`);
      if (budget.evictAllClean() === 0) throw noSpace(error, dir);
    }
    try {
      change();
    } catch (error) {
      if (isNoSpace(error)) throw noSpace(error, dir);
      throw fileError(error, `writing the cache of ${dir}`);
    }
  }
}
