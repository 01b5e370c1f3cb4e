/**
 * Emptied chunk files kept for reuse under `<dir>/spare/`: renaming one into place is much cheaper
 * than creating an inode. A chunk file is always prepared under a spare name and renamed into
 * place, so a crash never leaves a half-made file under a chunk's name.
 */
import { closeSync, openSync, readdirSync, renameSync, rmSync, truncateSync } from "node:fs";
import { randomUUID } from "node:crypto";
import path from "node:path";

/** Emptied files kept per volume. */
const MAX_SPARES = 64;

export class SpareFiles {
  readonly #dir: string;
  readonly #spares: string[] = [];
  #serial = 0;

  /** Takes over the spares found in `dir` (emptied again: a crash may have cut a create short). */
  constructor(dir: string) {
    this.#dir = dir;
    for (const name of readdirSync(dir)) {
      const spare = path.join(dir, name);
      if (this.#spares.length < MAX_SPARES && name.startsWith("s")) {
        truncateSync(spare, 0);
        this.#spares.push(spare);
        this.#serial = Math.max(this.#serial, Number.parseInt(name.slice(1), 10) || 0);
      } else {
        rmSync(spare, { force: true });
      }
    }
  }

  get count(): number {
    return this.#spares.length;
  }

  /**
   * Creates `target`: `prepare` writes the content or sets the size of a spare (or new) file, which
   * is then renamed to `target`. Returns its open descriptor; on failure nothing is left behind.
   */
  create(target: string, prepare: (fd: number) => void): number {
    const spare = this.#spares.pop();
    const from = spare ?? path.join(this.#dir, `n${++this.#serial}`);
    const fd = openSync(from, spare === undefined ? "w+" : "r+");
    try {
      prepare(fd);
      renameSync(from, target);
    } catch (error) {
      closeSync(fd);
      rmSync(from, { force: true });
      throw error;
    }
    return fd;
  }

  /** Removes a chunk file: emptied (its blocks freed) and kept as a spare, or deleted. */
  retire(file: string): void {
    if (this.#spares.length >= MAX_SPARES) {
      rmSync(file, { force: true });
      return;
    }
    try {
      truncateSync(file, 0);
      const spare = path.join(this.#dir, `s${++this.#serial}`);
      renameSync(file, spare);
      this.#spares.push(spare);
    } catch {
      rmSync(file, { force: true });
    }
  }

  /**
   * A file for a background write: an emptied spare renamed first to a name no other instance will
   * ever use, so a write still running after close cannot touch a spare a reopened cache took over.
   */
  claim(): { path: string; exists: boolean } {
    const claimed = path.join(this.#dir, `f${randomUUID()}`);
    const spare = this.#spares.pop();
    if (spare === undefined) return { path: claimed, exists: false };
    try {
      renameSync(spare, claimed);
      return { path: claimed, exists: true };
    } catch {
      return { path: claimed, exists: false }; // that spare is gone or unusable: start a new file
    }
  }
}
