/**
 * Where a volume's chunk map is persisted: chunk index -> current generation and stored size.
 * The storage package owns this interface; the gateway adapts it to Postgres/PGlite, tests use
 * the in-memory one. A commit is atomic: all of its changes become visible at once with the epoch.
 */
export interface ChunkRef {
  /** Generation of the object that holds the chunk's current content. */
  generation: number;
  /** Bytes the object occupies in the store (after the codec). */
  storedSize: number;
  /**
   * A clone's chunk it has not rewritten: the ancestor volume whose object (key prefix, data key) it
   * reads. Absent: the volume's own object. Every new generation is the volume's own.
   */
  owner?: string;
}

export interface ChunkIndexSnapshot {
  epoch: number;
  chunks: Map<number, ChunkRef>;
  /**
   * True when the index knows the writer it serves no longer holds the volume (a newer fencing
   * token): the map may hold another writer's commits, none of which the volume may take for its own.
   */
  fenced?: boolean;
}

export interface ChunkCommit {
  /**
   * The epoch the commit builds on: it is refused unless the index is still there. A commit may skip
   * epochs (epoch > previousEpoch + 1): a volume that uploaded chunks ahead of a commit names them with
   * generations of epochs it has reserved for that (volume/write-behind.ts).
   */
  previousEpoch: number;
  /** The epoch this commit creates: greater than previousEpoch. */
  epoch: number;
  /** Chunks whose current generation changes. */
  set: ReadonlyArray<readonly [index: number, ref: ChunkRef]>;
  /** Chunks that no longer have an object (trimmed or zeroed whole). */
  remove: readonly number[];
  /**
   * The generations this commit supersedes or removes: recorded in the same transaction so the
   * GC can delete them after the grace period (the Volume never deletes a committed object). The
   * owner is set where the superseded object was an ancestor's (ChunkRef.owner).
   */
  garbage: ReadonlyArray<readonly [index: number, generation: number, owner?: string]>;
}

export interface ChunkIndex {
  load(): Promise<ChunkIndexSnapshot>;
  /** Applies the commit atomically; throws StorageError("EIO") when the epoch or fencing check fails. */
  commit(commit: ChunkCommit): Promise<void>;
}
