/**
 * Large writes into a cold chunk file, and whole-chunk reads of one, with O_DIRECT through one
 * aligned bounce buffer: the pages of a file nobody read recently are new memory, the dearest thing
 * there is (docs/performance.md). The price: the write waits for the disk and the chunk stays cold.
 * Only whole pages at page offsets, at least MIN_DIRECT_BYTES; the caller writes the rest buffered.
 * The first EINVAL (a file system without O_DIRECT) turns this off for good.
 */
import { closeSync, constants as fsConstants, openSync, readSync, writeSync } from "node:fs";
import { copyBytes } from "../util/copy-bytes";
import { DIRECT_IO_ALIGNMENT, O_DIRECT, pageAlignedBuffer } from "./direct-io-buffers";

/** Smaller writes stay buffered: each direct write waits for the disk, which a 4 KiB write should not. */
export const MIN_DIRECT_BYTES = 64 * 1024;
/** The bounce buffer: pieces are moved this much at a time. */
const BOUNCE_BYTES = 1024 * 1024;

export class DirectPieces {
  #enabled: boolean;
  /** Page-aligned, made on first use. */
  #bounce: Buffer | undefined;

  constructor(enabled: boolean) {
    this.#enabled = enabled && O_DIRECT !== undefined;
  }

  /** Whether a piece of `length` bytes at `position` of a file is written this way. */
  takes(position: number, length: number): boolean {
    return this.#enabled && length >= MIN_DIRECT_BYTES && position % DIRECT_IO_ALIGNMENT === 0 && length % DIRECT_IO_ALIGNMENT === 0;
  }

  /**
   * Writes source[sourceOffset, +length) at `position` of the file open as `fd`, through O_DIRECT.
   * False when nothing was written because O_DIRECT was refused (the caller writes it buffered);
   * other errors (ENOSPC...) are thrown as they come.
   */
  write(fd: number, source: Uint8Array, sourceOffset: number, length: number, position: number): boolean {
    return this.#withDirect(fd, fsConstants.O_WRONLY, (direct, bounce) => {
      for (let done = 0; done < length;) {
        const n = Math.min(bounce.length, length - done);
        copyBytes(source, bounce, 0, sourceOffset + done, sourceOffset + done + n);
        for (let put = 0; put < n;) put += writeSync(direct, bounce, put, n - put, position + done + put);
        done += n;
      }
    });
  }

  /**
   * Reads `length` bytes (whole pages) at `position` of the file open as `fd` into target at
   * targetOffset, through O_DIRECT; bytes past the end of the file read as zeros. False when
   * O_DIRECT was refused (the caller reads buffered).
   */
  read(fd: number, target: Uint8Array, targetOffset: number, length: number, position: number): boolean {
    if (position % DIRECT_IO_ALIGNMENT !== 0 || length % DIRECT_IO_ALIGNMENT !== 0) return false;
    return this.#withDirect(fd, fsConstants.O_RDONLY, (direct, bounce) => {
      for (let done = 0; done < length;) {
        const want = Math.min(bounce.length, length - done);
        let got = 0;
        while (got < want) {
          const n = readSync(direct, bounce, got, want - got, position + done + got);
          if (n === 0) break;
          got += n;
        }
        copyBytes(bounce, target, targetOffset + done, 0, got);
        if (got < want) {
          target.fill(0, targetOffset + done + got, targetOffset + length);
          return;
        }
        done += want;
      }
    });
  }

  /** `fd` is the entry's own (buffered) descriptor: an O_DIRECT one is opened beside it for the call. */
  #withDirect(fd: number, mode: number, work: (direct: number, bounce: Buffer) => void): boolean {
    if (!this.#enabled) return false;
    let direct: number;
    try {
      direct = openSync(`/proc/self/fd/${fd}`, mode | O_DIRECT!);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EINVAL" || (error as NodeJS.ErrnoException).code === "ENOENT") {
        this.#enabled = false;
        return false;
      }
      throw error;
    }
    try {
      this.#bounce ??= pageAlignedBuffer(BOUNCE_BYTES);
      work(direct, this.#bounce);
      return true;
    } catch (error) {
      // Refused before a byte moved (alignment the device will not take): buffered from now on.
      if ((error as NodeJS.ErrnoException).code === "EINVAL") {
        this.#enabled = false;
        return false;
      }
      throw error;
    } finally {
      closeSync(direct);
    }
  }
}
