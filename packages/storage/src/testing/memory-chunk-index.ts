import type { ChunkCommit, ChunkIndex, ChunkIndexSnapshot, ChunkRef } from "../chunk-index";
import { StorageError } from "../errors";

/**
 * A ChunkIndex in memory with the same rules as the database one: a commit must build on the
 * current epoch, create a later one, and applies all of its changes at once. Several Volumes opened one after
 * another on the same instance see each other's commits, as after a gateway restart.
 */
export class MemoryChunkIndex implements ChunkIndex {
  private epoch = 0;
  private chunks = new Map<number, ChunkRef>();
  /** Every commit applied, in order (tests inspect what a flush committed). */
  readonly commits: ChunkCommit[] = [];
  /** Garbage recorded by the commits: [index, generation], in commit order (what the GC would delete). */
  readonly garbage: Array<[number, number]> = [];

  async load(): Promise<ChunkIndexSnapshot> {
    return { epoch: this.epoch, chunks: new Map([...this.chunks].map(([index, ref]) => [index, { ...ref }])) };
  }

  async commit(commit: ChunkCommit): Promise<void> {
    if (commit.previousEpoch !== this.epoch || !(commit.epoch > commit.previousEpoch)) {
      throw new StorageError("EIO", `commit for epoch ${commit.epoch} on ${commit.previousEpoch} refused: the current epoch is ${this.epoch}`);
    }
    const next = new Map(this.chunks);
    for (const [index, ref] of commit.set) next.set(index, { ...ref });
    for (const index of commit.remove) next.delete(index);
    this.chunks = next;
    this.epoch = commit.epoch;
    for (const [index, generation] of commit.garbage ?? []) this.garbage.push([index, generation]);
    this.commits.push(structuredClone(commit) as ChunkCommit);
  }

  /** The current map (a copy). */
  snapshot(): ChunkIndexSnapshot {
    return { epoch: this.epoch, chunks: new Map(this.chunks) };
  }
}
