/**
 * The storage engine's ChunkIndex, kept in the volume's rows in PostgreSQL/PGlite. A commit is one
 * transaction guarded by the epoch and the fencing token this engine was opened with; it also records
 * the superseded generations as garbage for the GC. A conflict means another writer moved the volume
 * on, so this engine must stop committing: it surfaces as EIO. A load says whether the volume's token
 * is still ours (`fenced`): a commit whose answer was lost is adopted only from a map no newer holder
 * can have touched (docs/durability-design.md, "A commit whose answer was lost").
 */
import { commitChunkMap, DbError, loadChunkMap, type Db } from "@stratus/db";
import { StorageError, type ChunkCommit, type ChunkIndex, type ChunkIndexSnapshot } from "@stratus/storage";

export class DbChunkIndex implements ChunkIndex {
  constructor(
    private readonly db: Db,
    private readonly volumeId: string,
    /** The token of the lease this gateway holds; undefined: the epoch alone guards. */
    private readonly fencingToken?: number,
    /** A commit was refused (stale token or epoch): the owner checks whether it was fenced. */
    private readonly onConflict?: () => void,
  ) {}

  async load(): Promise<ChunkIndexSnapshot> {
    try {
      const map = await loadChunkMap(this.db, this.volumeId);
      const fenced = this.fencingToken === undefined ? undefined : map.fencingToken !== this.fencingToken;
      return { epoch: map.epoch, chunks: map.chunks, fenced };
    } catch (error) {
      throw new StorageError("EIO", `loading the chunk map of ${this.volumeId} failed`, { cause: error });
    }
  }

  async commit(commit: ChunkCommit): Promise<void> {
    try {
      await commitChunkMap(this.db, {
        volumeId: this.volumeId,
        epoch: commit.epoch,
        previousEpoch: commit.previousEpoch,
        fencingToken: this.fencingToken,
        set: commit.set,
        remove: commit.remove,
        garbage: commit.garbage,
      });
    } catch (error) {
      const conflict = error instanceof DbError && error.code === "COMMIT_CONFLICT";
      if (conflict) this.onConflict?.();
      const what = conflict ? "was refused (stale epoch or fencing token)" : "failed";
      throw new StorageError("EIO", `commit of epoch ${commit.epoch} for ${this.volumeId} ${what}`, { cause: error });
    }
  }
}
