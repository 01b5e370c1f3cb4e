/**
 * Commits whose outcome the volume does not know: the index call failed, yet its transaction may
 * have landed (the answer was lost — a connection dropped after COMMIT, a timeout while it ran).
 * All of them build on the same committed epoch, so at most one can ever land, and a snapshot of
 * the index tells which. One is taken for ours only when the index stands at its epoch with exactly
 * its changes and does not report our writer fenced: another writer's commit of that epoch names
 * other generations (its fencing token gives another salt) and comes with a newer token.
 */
import type { FrozenChunk } from "../cache/cache-entry";
import type { ChunkCommit, ChunkIndexSnapshot } from "../chunk-index";

export interface InDoubtCommit {
  commit: ChunkCommit;
  /** Its freeze (released when it failed): the chunks still unchanged since turn clean if it landed. */
  frozenList: readonly FrozenChunk[];
}

/**
 * The newest ones kept: each holds its whole change list. Past this, an older one that lands late
 * is not recognised and the next commit is refused as before (logged each retry).
 */
const MAX_IN_DOUBT = 16;

export class InDoubtCommits {
  #list: InDoubtCommit[] = [];

  get size(): number {
    return this.#list.length;
  }

  add(entry: InDoubtCommit): void {
    this.#list.push(entry);
    if (this.#list.length > MAX_IN_DOUBT) this.#list.shift();
  }

  /** A commit of ours landed: none of these can land any more (the epoch moved past theirs). */
  clear(): void {
    this.#list = [];
  }

  /** The one the snapshot shows landed, if any. */
  landedIn(snapshot: ChunkIndexSnapshot): InDoubtCommit | undefined {
    return this.#list.find((entry) => commitLandedIn(snapshot, entry.commit));
  }
}

/** Whether `snapshot` is the result of `commit` (and of nothing since). */
export function commitLandedIn(snapshot: ChunkIndexSnapshot, commit: ChunkCommit): boolean {
  return (
    snapshot.fenced !== true &&
    snapshot.epoch === commit.epoch &&
    commit.set.every(([chunk, ref]) => snapshot.chunks.get(chunk)?.generation === ref.generation) &&
    commit.remove.every((chunk) => !snapshot.chunks.has(chunk))
  );
}
