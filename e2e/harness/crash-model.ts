/**
 * What a crash may and may not do to a volume, block by block (4 KiB blocks), for kill -9 tests.
 *
 * Every write gives each block it covers a new version; a block's content is derived from
 * (block, version) alone, so a read-back names the version it holds. Per block the model keeps the
 * version made durable by the last completed FLUSH and the versions written since (sent, whether
 * acknowledged or not): after a crash a block must hold the durable version or one of those later
 * ones, never anything older and never anything else. It also keeps the whole volume's versions at
 * every completed FLUSH, so a volume rebuilt from the bucket can be matched to one of them.
 *
 * The workload is "a batch of non-overlapping writes in flight at once, then FLUSH", so the state a
 * completed FLUSH covers is exact: every write of the batch was acknowledged before the FLUSH was sent.
 */
import { seededRandom } from "./images";

export const BLOCK = 4096;

export interface BlockWrite {
  /** First block. */
  block: number;
  blocks: number;
  /** The version each block gets (one per write; versions grow). */
  version: number;
}

export interface FlushState {
  /** Index of the flush (0 = the state the model started from). */
  index: number;
  /** Date.now() when the FLUSH reply arrived. */
  at: number;
  versions: Uint32Array;
  /** The highest version sent before this state was taken. */
  lastSent: number;
}

export class CrashModel {
  readonly blocks: number;
  /** Version of each block at the last completed FLUSH (0 = zeros, never written). */
  readonly durable: Uint32Array;
  /** Versions sent since the last completed FLUSH, per block. */
  readonly #since = new Map<number, number[]>();
  /** The latest version sent per block (what the volume holds if nothing crashes). */
  readonly latest: Uint32Array;
  readonly flushes: FlushState[] = [];
  /** Every version ever sent, per block. */
  readonly #history = new Map<number, number[]>();
  #nextVersion = 1;

  constructor(readonly size: number) {
    this.blocks = size / BLOCK;
    this.durable = new Uint32Array(this.blocks);
    this.latest = new Uint32Array(this.blocks);
    this.flushes.push({ index: 0, at: Date.now(), versions: this.durable.slice(), lastSent: 0 });
  }

  /** Up to `count` random non-overlapping writes of 1..maxBlocks blocks each. */
  planBatch(random: () => number, count: number, maxBlocks: number): BlockWrite[] {
    const taken: Array<[number, number]> = [];
    const writes: BlockWrite[] = [];
    for (let attempt = 0; writes.length < count && attempt < count * 4; attempt++) {
      const blocks = 1 + Math.floor(random() * maxBlocks);
      const block = Math.floor(random() * (this.blocks - blocks + 1));
      if (taken.some(([start, n]) => block < start + n && start < block + blocks)) continue;
      taken.push([block, blocks]);
      writes.push({ block, blocks, version: this.#nextVersion++ });
    }
    return writes;
  }

  /** Call before the write goes on the wire: from then on its blocks may hold it. */
  sent(write: BlockWrite): void {
    for (let b = write.block; b < write.block + write.blocks; b++) {
      const list = this.#since.get(b) ?? [];
      list.push(write.version);
      this.#since.set(b, list);
      this.latest[b] = write.version;
      const history = this.#history.get(b) ?? [];
      history.push(write.version);
      this.#history.set(b, history);
    }
  }

  /** Call when a FLUSH sent after every write so far was acknowledged has completed. */
  flushed(): FlushState {
    this.durable.set(this.latest);
    this.#since.clear();
    const state = { index: this.flushes.length, at: Date.now(), versions: this.durable.slice(), lastSent: this.#nextVersion - 1 };
    this.flushes.push(state);
    return state;
  }

  /** The bytes of `block` at `version`. */
  static content(block: number, version: number): Buffer {
    const out = Buffer.alloc(BLOCK);
    if (version === 0) return out;
    out.writeUInt32BE(block, 0);
    out.writeUInt32BE(version, 4);
    const random = seededRandom((block * 2654435761 + version * 40503) >>> 0);
    for (let i = 8; i < BLOCK; i += 4) out.writeUInt32BE((random() * 2 ** 32) >>> 0, i);
    return out;
  }

  /** The data of a write, as sent. */
  static data(write: BlockWrite): Buffer {
    const parts: Buffer[] = [];
    for (let b = write.block; b < write.block + write.blocks; b++) parts.push(CrashModel.content(b, write.version));
    return Buffer.concat(parts);
  }

  /**
   * Which version each block of an image read back holds; throws naming the first block that holds
   * something no write produced (torn or foreign data).
   */
  static versionsIn(image: Buffer, firstBlock = 0): Uint32Array {
    const count = image.length / BLOCK;
    const versions = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const block = firstBlock + i;
      const bytes = image.subarray(i * BLOCK, (i + 1) * BLOCK);
      const version = bytes.readUInt32BE(4);
      const expected = CrashModel.content(block, version);
      if (!bytes.equals(expected)) {
        const tag = version === 0 ? "not zeros" : `not block ${block} version ${version} (header says block ${bytes.readUInt32BE(0)})`;
        throw new Error(`block ${block} (offset ${block * BLOCK}) holds data no write produced: ${tag}`);
      }
      versions[i] = version;
    }
    return versions;
  }

  /**
   * After a crash: every block must hold its durable version or one sent since. Returns the
   * problems (empty = fine), at most `limit` of them.
   */
  checkAfterCrash(found: Uint32Array, limit = 10): string[] {
    const problems: string[] = [];
    for (let b = 0; b < this.blocks && problems.length < limit; b++) {
      const v = found[b]!;
      if (v === this.durable[b] || this.#since.get(b)?.includes(v)) continue;
      problems.push(`block ${b}: holds version ${v}, flushed version ${this.durable[b]}, sent since: [${this.#since.get(b)?.join(",") ?? ""}]`);
    }
    return problems;
  }

  /** Adopts what the volume holds now (after a check and a FLUSH) as the new durable state. */
  adopt(found: Uint32Array): void {
    this.durable.set(found);
    this.latest.set(found);
    this.#since.clear();
    this.flushes.push({ index: this.flushes.length, at: Date.now(), versions: this.durable.slice(), lastSent: this.#nextVersion - 1 });
  }

  /**
   * The flush states an image can be "the state at flush k plus possibly later writes" of: every
   * block holds flush k's version or a version sent to that block after flush k. Returns the
   * matching flush indexes, newest first, and whether each is an exact match.
   */
  matchingFlushes(found: Uint32Array): Array<{ index: number; exact: boolean }> {
    const matches: Array<{ index: number; exact: boolean }> = [];
    for (let k = this.flushes.length - 1; k >= 0; k--) {
      const { versions, lastSent } = this.flushes[k]!;
      let ok = true;
      let exact = true;
      for (let b = 0; b < this.blocks && ok; b++) {
        const v = found[b]!;
        if (v === versions[b]) continue;
        exact = false;
        // Versions are handed out in send order: a later write has a version above lastSent.
        ok = v > lastSent && (this.#history.get(b)?.includes(v) ?? false);
      }
      if (ok) matches.push({ index: k, exact });
    }
    return matches;
  }
}
