/**
 * Frozen-chunk preservation: a commit freezes every dirty chunk, and until its upload has read a
 * chunk, a write to it first keeps what it is about to overwrite. Small writes go to an in-memory
 * undo log; once the log would reach a quarter of the chunk, one full copy replaces it; past the
 * volume's memory allowance, a copy in a file aside (`<dir>/frozen/`). A whole-chunk write keeps
 * the old file itself as a hard link aside. None of it needs to survive a crash: a restart commits
 * afresh from the dirty chunks.
 */
import { copyFileSync, linkSync, readFileSync, renameSync, rmSync, unlinkSync } from "node:fs";
import path from "node:path";
import type { CacheEntry, FrozenChunk } from "./cache-entry";
import { chunkFileName } from "./cache-files";

/** What preservation needs of the cache: chunk files and synchronous reads of them. */
export interface FrozenHost {
  chunkLength(index: number): number;
  filePath(index: number): string;
  readInto(entry: CacheEntry, within: number, target: Uint8Array, targetOffset: number, length: number): void;
  /** A whole chunk into `data` (O_DIRECT for a cold one). */
  readWhole(entry: CacheEntry, data: Buffer): void;
}

/** Memory a volume may hold for frozen content (undo logs and full copies) before it goes to files. */
const DEFAULT_MAX_FROZEN_MEMORY = 64 * 1024 * 1024;

export class FrozenContent {
  readonly #dir: string;
  readonly #host: FrozenHost;
  readonly #maxMemory: number;
  /** Bytes held by undo logs and in-memory copies. */
  #memory = 0;
  #count = 0;

  constructor(dir: string, host: FrozenHost, maxMemoryBytes = DEFAULT_MAX_FROZEN_MEMORY) {
    this.#dir = dir;
    this.#host = host;
    this.#maxMemory = maxMemoryBytes;
  }

  /** Freezes not yet settled or released. */
  get pending(): number {
    return this.#count;
  }

  /** Captures a dirty chunk's state for a commit; writes after this preserve the content first. */
  freeze(entry: CacheEntry): FrozenChunk {
    const frozen: FrozenChunk = {
      entry,
      index: entry.index,
      version: entry.version,
      hole: entry.hole,
      sidePath: undefined,
      undo: [],
      undoBytes: 0,
      copy: undefined,
      taken: false,
      released: false,
    };
    if (!entry.hole) entry.frozen = frozen;
    this.#count++;
    return frozen;
  }

  /** Before a partial write of `length` bytes at `within` to a frozen chunk: keeps what it overwrites. */
  preserve(entry: CacheEntry, within: number, length: number): void {
    const frozen = entry.frozen;
    if (frozen === undefined) return;
    const chunkLength = this.#host.chunkLength(entry.index);
    const wantsCopy = frozen.undoBytes + length >= chunkLength / 4;
    const memoryNeeded = wantsCopy ? chunkLength - frozen.undoBytes : length;
    if (this.#memory + memoryNeeded > this.#maxMemory) {
      const side = this.#sidePath(frozen);
      copyFileSync(this.#host.filePath(entry.index), side);
      frozen.sidePath = side;
      entry.frozen = undefined; // the side file is current content; the undo log still applies to it
      return;
    }
    if (wantsCopy) {
      const copy = Buffer.allocUnsafe(chunkLength);
      this.#host.readInto(entry, 0, copy, 0, chunkLength);
      applyUndo(copy, frozen);
      this.#memory += chunkLength - frozen.undoBytes;
      frozen.copy = copy;
      frozen.undo = [];
      frozen.undoBytes = 0;
      entry.frozen = undefined;
      return;
    }
    const previous = Buffer.allocUnsafe(length);
    this.#host.readInto(entry, within, previous, 0, length);
    frozen.undo.push({ offset: within, data: previous });
    frozen.undoBytes += length;
    this.#memory += length;
  }

  /**
   * Before a whole-chunk write replaces a frozen chunk's file: the frozen content keeps the old
   * file as a hard link aside (no copy). Returns the undo for a replacement that failed.
   */
  linkAside(entry: CacheEntry): () => void {
    const frozen = entry.frozen!;
    const side = this.#sidePath(frozen);
    linkSync(this.#host.filePath(entry.index), side);
    frozen.sidePath = side;
    entry.frozen = undefined;
    return () => {
      // Nothing replaced: drop the link, since a retry writing in place would change its inode too.
      unlinkSync(side);
      frozen.sidePath = undefined;
      entry.frozen = frozen;
    };
  }

  /** Before a frozen chunk's file goes (a trim): moves it aside instead of deleting it. */
  moveAside(entry: CacheEntry): void {
    const frozen = entry.frozen!;
    const side = this.#sidePath(frozen);
    renameSync(this.#host.filePath(entry.index), side);
    frozen.sidePath = side;
    entry.frozen = undefined;
  }

  /**
   * The frozen content (read synchronously, so atomically with respect to writes), or null for a
   * hole. `allocate` gives the buffer a chunk's file is read into; content kept aside comes as is.
   */
  read(frozen: FrozenChunk, allocate: (length: number) => Buffer): Buffer | null {
    if (frozen.hole) return null;
    if (frozen.copy !== undefined) return frozen.copy;
    let data: Buffer;
    if (frozen.sidePath !== undefined) {
      data = readFileSync(frozen.sidePath);
    } else {
      const entry = frozen.entry;
      data = allocate(this.#host.chunkLength(entry.index));
      this.#host.readWhole(entry, data);
      if (entry.frozen === frozen) entry.frozen = undefined;
    }
    applyUndo(data, frozen);
    frozen.taken = true;
    return data;
  }

  /** Forgets a freeze (its commit failed or is done): no more preserving, side copy deleted. After the cache closed it touches no file. */
  release(frozen: FrozenChunk, cacheClosed: boolean): void {
    if (frozen.released) return;
    frozen.released = true;
    this.#count--;
    // After close, the directory may belong to a new instance.
    if (cacheClosed) return;
    if (frozen.entry.frozen === frozen) frozen.entry.frozen = undefined;
    if (frozen.sidePath !== undefined) {
      rmSync(frozen.sidePath, { force: true });
      frozen.sidePath = undefined;
    }
    this.#memory -= frozen.undoBytes + (frozen.copy?.length ?? 0);
    frozen.undo = [];
    frozen.undoBytes = 0;
    frozen.copy = undefined;
    frozen.taken = true;
  }

  #sidePath(frozen: FrozenChunk): string {
    return path.join(this.#dir, `${chunkFileName(frozen.index)}-${frozen.version}`);
  }
}

/** Puts back what writes since the freeze overwrote, newest first, so the oldest (frozen) bytes win. */
function applyUndo(data: Buffer, frozen: FrozenChunk): void {
  for (let i = frozen.undo.length - 1; i >= 0; i--) {
    const { offset, data: previous } = frozen.undo[i]!;
    previous.copy(data, offset);
  }
}
