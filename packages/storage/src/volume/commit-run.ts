/**
 * How one commit runs. Its freeze captures every dirty chunk's version at a flush point (a write to
 * a frozen chunk its upload has not read keeps the frozen content aside), then named steps run:
 * #begin, #uploadAll, #mapChanges, #land (one ChunkIndex commit), #settle. A failing store or index
 * loses nothing: the chunks stay dirty and the scheduler retries. A failed index commit may still
 * have landed (its answer lost): it stays in doubt (in-doubt-commits.ts) until the index shows
 * whether it did, and one that did is adopted (#adopt) rather than committed again.
 * Over our ~400-line aim on purpose: the uploads the ChunkUploader and write-behind call back into
 * share the running commit's private state, so they stay in this class.
 */
import type { FrozenChunk } from "../cache/cache-entry";
import type { ChunkCommit, ChunkIndex, ChunkRef } from "../chunk-index";
import { StorageError, asEio } from "../errors";
import type { BufferPool } from "../util/buffer-pool";
import type { Clock } from "../util/clock";
import { GENERATIONS_PER_EPOCH } from "./chunk-layout";
import { InDoubtCommits, type InDoubtCommit } from "./in-doubt-commits";
import type { VolumeContext } from "./volume-context";
import type { ChunkUploader, CommittedMap } from "./volume-options";
import type { UploadAhead, WriteBehind } from "./write-behind";

export interface CommitRunOptions {
  index: ChunkIndex;
  writeBehind: WriteBehind;
  /** The writer's fencing token mod 65536. */
  salt: number;
  /** Set once the runner exists: it may call back into uploadFrozenChunk. */
  uploader: () => ChunkUploader;
  onCommitted: ((committed: CommittedMap) => void | Promise<void>) | undefined;
  clock: Clock;
}

interface RunningCommit {
  id: string;
  previousEpoch: number;
  epoch: number;
  generation: number;
  frozenList: FrozenChunk[];
  frozen: Map<number, FrozenChunk>;
  /** Uploads ahead that hold exactly the frozen content: awaited instead of uploaded. */
  claimed: Map<number, UploadAhead>;
  /** Uploads ahead of content written over since. */
  stale: UploadAhead[];
  /** index -> the object the commit references (storedSize 0: no object, the chunk leaves the map). */
  stored: Map<number, ChunkRef>;
  /** Content read for upload, kept until the upload succeeds so a retried upload sends the same bytes. */
  content: Map<number, Buffer | null>;
  /** Uploads running now: a second call for the same chunk joins it (its content buffer has one user). */
  running: Map<number, Promise<{ storedSize: number }>>;
  /** Claimed uploads ahead that failed, by task id, while the ChunkUploader retries them. */
  retriedAhead: Map<string, UploadAhead>;
}

interface MapChanges {
  set: Array<[number, ChunkRef]>;
  remove: number[];
  garbage: Array<[number, number, string?]>;
}

const ZEROS = Buffer.alloc(64 * 1024);

export class CommitRunner {
  readonly #ctx: VolumeContext;
  readonly #options: CommitRunOptions;
  /** Commit cycles: the running one and one queued behind it (shared by callers meanwhile). */
  #runningCycle: Promise<void> | undefined;
  #queuedCycle: Promise<void> | undefined;
  #current: RunningCommit | undefined;
  #serial = 0;
  #pendingUploads = 0;
  /** Failed index commits that may have landed all the same. */
  readonly #inDoubt = new InDoubtCommits();

  constructor(ctx: VolumeContext, options: CommitRunOptions) {
    this.#ctx = ctx;
    this.#options = options;
  }

  /** Content read for upload comes from this pool. */
  get #uploads(): BufferPool {
    return this.#ctx.chunks.buffers.upload;
  }

  /** Uploads of the running commit not finished yet. */
  get pendingUploads(): number {
    return this.#pendingUploads;
  }

  /** Settles once the running cycle, if any, is over (never rejects). */
  runningSettled(): Promise<void> {
    return this.#runningCycle?.catch(() => {}) ?? Promise.resolve();
  }

  /** The volume closed: no upload finds its commit any more. */
  stop(): void {
    this.#current = undefined;
  }

  /**
   * The next commit cycle whose freeze is taken at or after this call: started now (freezing
   * synchronously) when none runs, else queued behind the running one and shared.
   */
  cycle(): Promise<void> {
    if (this.#queuedCycle !== undefined) return this.#queuedCycle;
    if (this.#runningCycle === undefined) return this.#startCycle();
    const queued = this.#runningCycle
      .catch(() => {})
      .then(() => {
        this.#queuedCycle = undefined;
        if (this.#ctx.state() === "closed") throw new StorageError("ESHUTDOWN", `volume ${this.#ctx.volumeId} is closed`);
        return this.#startCycle();
      });
    this.#queuedCycle = queued;
    return queued;
  }

  #startCycle(): Promise<void> {
    const frozen = this.#ctx.disk.freezeDirty();
    const run = this.#run(frozen).finally(() => {
      if (this.#runningCycle === run) this.#runningCycle = undefined;
    });
    this.#runningCycle = run;
    return run;
  }

  async #run(frozen: FrozenChunk[]): Promise<void> {
    let frozenList = frozen;
    if (frozenList.length === 0) return;
    // Before uploading anything again: did an earlier commit land though it reported failure?
    if (this.#inDoubt.size > 0) frozenList = await this.#reconcile(frozenList);
    if (frozenList.length === 0 || this.#ctx.state() === "closed") return;
    const commit = this.#begin(frozenList);
    const startedAt = performance.now();
    await this.#uploadAll(commit);
    const uploadedAt = performance.now();
    const changes = this.#mapChanges(commit);
    const { set, remove } = changes;
    if (set.length === 0 && remove.length === 0 && commit.claimed.size === 0 && commit.stale.length === 0) this.#options.writeBehind.returnEpoch(commit.epoch);
    if (set.length > 0 || remove.length > 0) {
      await this.#land(commit, changes);
      if (this.#ctx.state() === "closed") return; // abandoned meanwhile: touch nothing
    }
    if (this.#ctx.state() === "closed") return;
    this.#settle(commit, set);
    if (set.length > 0 || remove.length > 0) {
      const seconds = (performance.now() - startedAt) / 1000;
      const counters = this.#ctx.counters;
      counters.commits++;
      counters.commitSeconds += seconds;
      counters.lastCommitSeconds = seconds;
    }
    this.#ctx.logger?.debug(
      {
        volumeId: this.#ctx.volumeId,
        epoch: this.#ctx.committed.epoch,
        uploaded: set.length,
        uploadedAhead: commit.claimed.size,
        removed: remove.length,
        uploadMs: Math.round(uploadedAt - startedAt),
        indexMs: Math.round(performance.now() - uploadedAt),
      },
      "committed",
    );
  }

  /** Takes write-behind's hand-over and makes the running commit. */
  #begin(frozenList: FrozenChunk[]): RunningCommit {
    const ctx = this.#ctx;
    const previousEpoch = ctx.committed.epoch;
    const frozen = new Map(frozenList.map((chunk) => [chunk.index, chunk]));
    const { epoch, claimed, stale } = this.#options.writeBehind.takeForCommit(previousEpoch, frozen);
    // Uploads ahead of content written over since: their objects go once they settle (nothing claims them).
    if (stale.length > 0) void ctx.track(this.#deleteUploadsAhead(stale));
    const commit: RunningCommit = {
      id: `${ctx.volumeId}:${epoch}:${++this.#serial}`,
      previousEpoch,
      epoch,
      generation: epoch * GENERATIONS_PER_EPOCH + this.#options.salt,
      frozenList,
      frozen,
      claimed,
      stale,
      stored: new Map(),
      content: new Map(),
      running: new Map(),
      retriedAhead: new Map(),
    };
    this.#current = commit;
    return commit;
  }

  /** Uploads every frozen chunk not claimed, and awaits the claimed ones; on failure cleans up and throws EIO. */
  async #uploadAll(commit: RunningCommit): Promise<void> {
    const ctx = this.#ctx;
    const uploads = commit.frozenList.filter((frozen) => !frozen.hole && !commit.claimed.has(frozen.index));
    this.#pendingUploads = uploads.length + commit.claimed.size;
    try {
      // Both run to the end before a failure counts, so every object stored is known for the cleanup.
      const outcomes = await Promise.allSettled([
        runLimited(uploads, ctx.concurrency, (frozen) => this.#uploadFresh(commit, frozen)),
        runLimited([...commit.claimed], commit.claimed.size, (claim) => this.#awaitClaimed(commit, claim)),
      ]);
      for (const outcome of outcomes) if (outcome.status === "rejected") throw outcome.reason;
    } catch (error) {
      this.#releaseAll(commit);
      this.#pendingUploads = 0;
      if (this.#current === commit) this.#current = undefined;
      // Nothing was committed: the chunks stay dirty and these uploads are unreferenced.
      if (ctx.state() === "closed") throw asEio(error, `commit of ${ctx.volumeId}`); // abandoned: touch nothing
      const orphans = [...commit.stored].filter(([, ref]) => ref.storedSize > 0).map(([index, ref]) => [index, ref.generation] as const);
      await ctx.chunks.deleteGenerations(orphans).catch((cleanupError: unknown) => {
        ctx.logger?.warn({ err: cleanupError, volumeId: ctx.volumeId }, "could not delete uploads of a failed commit");
      });
      throw asEio(error, `commit of ${ctx.volumeId}`);
    }
    if (this.#current === commit) this.#current = undefined;
  }

  async #uploadFresh(commit: RunningCommit, frozen: FrozenChunk): Promise<void> {
    const task = { volumeId: this.#ctx.volumeId, commitId: commit.id, index: frozen.index, generation: commit.generation };
    const { storedSize } = await this.#options.uploader().upload(task);
    commit.stored.set(frozen.index, { generation: commit.generation, storedSize });
    this.#pendingUploads--;
  }

  async #awaitClaimed(commit: RunningCommit, [index, record]: [number, UploadAhead]): Promise<void> {
    const storedSize = await record.result;
    if (storedSize !== undefined) {
      commit.stored.set(index, { generation: record.generation, storedSize });
      this.#pendingUploads--;
      return;
    }
    // It failed (the store's own retries gave up): now as a queued job, retried with backoff like the
    // commit's own uploads. Same key, same bytes as any attempt of it that may still land: the frozen content.
    commit.retriedAhead.set(record.id, record);
    const { storedSize: size } = await this.#options
      .uploader()
      .upload({ volumeId: this.#ctx.volumeId, commitId: record.id, index, generation: record.generation })
      .finally(() => commit.retriedAhead.delete(record.id));
    commit.stored.set(index, { generation: record.generation, storedSize: size });
    this.#pendingUploads--;
  }

  #mapChanges(commit: RunningCommit): MapChanges {
    const changes: MapChanges = { set: [], remove: [], garbage: [] };
    for (const frozen of commit.frozenList) {
      const previous = this.#ctx.committed.get(frozen.index);
      const ref = commit.stored.get(frozen.index);
      if (ref !== undefined && ref.storedSize > 0) changes.set.push([frozen.index, ref]);
      else if (previous !== undefined) changes.remove.push(frozen.index);
      if (previous !== undefined)
        changes.garbage.push(previous.owner === undefined ? [frozen.index, previous.generation] : [frozen.index, previous.generation, previous.owner]);
    }
    return changes;
  }

  /** Moves the chunk map in the index, then in memory, then tells onCommitted (whose failure is only logged). */
  async #land(commit: RunningCommit, { set, remove, garbage }: MapChanges): Promise<void> {
    const ctx = this.#ctx;
    // Journalled first, so an open after a crash that lost the answer can ask the index (cache-replay.ts).
    for (const [index, ref] of set) {
      const frozen = commit.frozen.get(index);
      if (frozen !== undefined) ctx.disk.markLanding(frozen, ref.generation);
    }
    try {
      await this.#commitToIndex(commit, { previousEpoch: commit.previousEpoch, epoch: commit.epoch, set, remove, garbage });
    } catch (error) {
      this.#releaseAll(commit);
      throw error;
    }
    if (ctx.state() === "closed") return;
    ctx.committed.apply(commit.epoch, set, remove, this.#options.clock.now());
    await this.#committed(commit.epoch);
  }

  /** Tells onCommitted (the manifest writer) that the map moved to `epoch`; its failure is only logged. */
  async #committed(epoch: number): Promise<void> {
    const ctx = this.#ctx;
    const onCommitted = this.#options.onCommitted;
    if (onCommitted === undefined) return;
    try {
      const inBackground = (work: Promise<void>) => {
        void ctx.track(work.catch((error: unknown) => ctx.logger?.warn({ err: error, volumeId: ctx.volumeId, epoch }, "after-commit work failed")));
      };
      await onCommitted({ epoch, chunks: ctx.committed.copy(), inBackground });
    } catch (error) {
      ctx.logger?.warn({ err: error, volumeId: ctx.volumeId, epoch }, "after-commit hook failed");
    }
  }

  /** Chunks not written since the freeze turn clean at their new generation (or leave the cache). */
  #settle(commit: RunningCommit, set: ReadonlyArray<[number, ChunkRef]>): void {
    const { disk, budget } = this.#ctx;
    const committedGenerations = new Map(set.map(([index, ref]) => [index, ref.generation]));
    for (const frozen of commit.frozenList) disk.settle(frozen, committedGenerations.get(frozen.index));
    disk.compactIfLarge();
    budget.evictToTarget();
    budget.wake();
  }

  #releaseAll(commit: RunningCommit): void {
    for (const frozen of commit.frozenList) this.#ctx.disk.release(frozen);
  }

  /**
   * Commits through the index. When the commit fails, it stays in doubt and the index is asked what
   * it holds: this commit landed (its answer was lost) counts as done; an earlier one in doubt that
   * landed meanwhile is adopted, and this one fails (the retry builds on the adopted epoch).
   */
  async #commitToIndex(running: RunningCommit, commit: ChunkCommit): Promise<void> {
    const ctx = this.#ctx;
    const { index } = this.#options;
    try {
      await index.commit(commit);
      this.#inDoubt.clear(); // the epoch moved past theirs: none of them can land any more
      return;
    } catch (error) {
      this.#inDoubt.add({ commit, frozenList: running.frozenList });
      const failed = asEio(error, `commit of epoch ${commit.epoch} of ${ctx.volumeId}`);
      const snapshot = await index.load().catch(() => undefined);
      if (snapshot === undefined || ctx.state() === "closed") throw failed; // in doubt: the next cycle asks again
      const landed = this.#inDoubt.landedIn(snapshot);
      if (landed === undefined) throw failed;
      if (landed.commit === commit) {
        this.#inDoubt.clear();
        ctx.logger?.warn({ err: error, volumeId: ctx.volumeId, epoch: commit.epoch }, "commit reported failure but landed");
        return;
      }
      this.#releaseAll(running);
      await this.#adopt(landed, []);
      throw failed;
    }
  }

  /**
   * Commits in doubt, asked about before a cycle uploads: when the index shows one of them landed,
   * it is adopted, and the frozen chunks it already holds (unchanged since its freeze) leave this
   * cycle clean. The index out of reach: the cycle fails before uploading anything.
   */
  async #reconcile(frozenList: FrozenChunk[]): Promise<FrozenChunk[]> {
    const ctx = this.#ctx;
    let snapshot;
    try {
      snapshot = await this.#options.index.load();
    } catch (error) {
      for (const frozen of frozenList) ctx.disk.release(frozen);
      throw asEio(error, `asking the index whether an earlier commit of ${ctx.volumeId} landed`);
    }
    if (ctx.state() === "closed") return [];
    const landed = this.#inDoubt.landedIn(snapshot);
    return landed === undefined ? frozenList : this.#adopt(landed, frozenList);
  }

  /**
   * A commit that reported failure landed: the map moves to it in memory, the manifest follows, and
   * its chunks unchanged since its freeze turn clean. Returns the frozen chunks of `frozenList` it
   * does not cover (those it covers are settled here).
   */
  async #adopt(landed: InDoubtCommit, frozenList: FrozenChunk[]): Promise<FrozenChunk[]> {
    const ctx = this.#ctx;
    const { commit } = landed;
    this.#inDoubt.clear();
    ctx.committed.apply(commit.epoch, commit.set, commit.remove, this.#options.clock.now());
    ctx.logger?.warn({ volumeId: ctx.volumeId, epoch: commit.epoch }, "a commit that reported failure had landed: adopted, not committed again");
    const generations = new Map(commit.set.map(([index, ref]) => [index, ref.generation]));
    const refrozen = new Map(frozenList.map((frozen) => [frozen.index, frozen]));
    for (const old of landed.frozenList) {
      const again = refrozen.get(old.index);
      if (again !== undefined && again.entry === old.entry && again.version === old.version) {
        refrozen.delete(old.index); // what the landed commit holds: not uploaded again
        ctx.disk.settle(again, generations.get(old.index));
      }
      ctx.disk.settle(old, generations.get(old.index)); // released already; clean only if unchanged
    }
    ctx.disk.compactIfLarge();
    ctx.budget.evictToTarget();
    ctx.budget.wake();
    await this.#committed(commit.epoch);
    return frozenList.filter((frozen) => refrozen.get(frozen.index) === frozen);
  }

  // ---- uploads, called by the ChunkUploader and write-behind ----------------------------------

  /**
   * For each frozen chunk: reads the frozen content (synchronously, so atomically with respect to
   * writes), encodes and stores it. All-zero content is not stored: `storedSize` 0 means "no
   * object". Throws ENOTFOUND when that commit is no longer running.
   */
  uploadFrozenChunk(commitId: string, index: number, generation: number): Promise<{ storedSize: number }> {
    const closed = this.#ctx.state() === "closed";
    const ahead = this.#current?.retriedAhead.get(commitId);
    if (ahead !== undefined && ahead.index === index && ahead.generation === generation && !closed) return this.runUploadAhead(ahead);
    const commit = this.#current;
    const frozen = commit?.frozen.get(index);
    if (commit === undefined || commit.id !== commitId || commit.generation !== generation || frozen === undefined || closed) {
      return Promise.reject(
        new StorageError("ENOTFOUND", `commit ${commitId} of ${this.#ctx.volumeId} has no upload of chunk ${index} generation ${generation} pending`),
      );
    }
    const running = commit.running.get(index);
    if (running !== undefined) return running;
    const upload = this.#uploadContent(commit, frozen).finally(() => commit.running.delete(index));
    commit.running.set(index, upload);
    return upload;
  }

  async #uploadContent(commit: RunningCommit, frozen: FrozenChunk): Promise<{ storedSize: number }> {
    const index = frozen.index;
    let content = commit.content.get(index);
    if (content === undefined) {
      const data = this.#ctx.disk.readFrozen(frozen, (length) => this.#uploads.acquire(length));
      content = data === null || isAllZero(data) ? null : data;
      if (content === null) this.#uploads.release(data);
      commit.content.set(index, content);
    }
    if (content === null) return { storedSize: 0 };
    const storedSize = await this.#ctx.chunks.save(index, commit.generation, content);
    // Uploaded: nothing reads this content any more (a failed upload keeps it for the retry; a commit
    // that fails as a whole leaves its buffers to the garbage collector).
    commit.content.delete(index);
    this.#uploads.release(content);
    return { storedSize };
  }

  /**
   * An upload ahead of the commit (write-behind.ts): reads the chunk's current content and version
   * (or, when a freeze came first, the frozen content), encodes and stores it under its own generation.
   */
  runUploadAhead(record: UploadAhead): Promise<{ storedSize: number }> {
    record.running ??= this.#uploadAhead(record).finally(() => (record.running = undefined));
    return record.running;
  }

  async #uploadAhead(record: UploadAhead): Promise<{ storedSize: number }> {
    if (record.storedSize !== undefined) return { storedSize: record.storedSize }; // done: a late call changes nothing
    if (record.content === undefined) {
      // Given up before it read: a commit that failed released the frozen content, or the chunk is no longer data.
      if (record.cancelled || record.frozen?.released) return { storedSize: 0 };
      const allocate = (length: number) => this.#uploads.acquire(length);
      let data: Buffer | null;
      if (record.frozen !== undefined) {
        data = this.#ctx.disk.readFrozen(record.frozen, allocate);
        record.version = record.frozen.version;
      } else {
        const current = this.#ctx.disk.readDirty(record.index, allocate);
        data = current?.data ?? null;
        record.version = current?.version ?? -1; // not dirty any more: matches no freeze
      }
      record.content = data === null || isAllZero(data) ? null : data;
      if (record.content === null && data !== null) this.#uploads.release(data);
    }
    if (record.content === null) return { storedSize: (record.storedSize = 0) };
    const storedSize = await this.#ctx.chunks.save(record.index, record.generation, record.content);
    this.#uploads.release(record.content);
    record.content = undefined;
    record.storedSize = storedSize;
    return { storedSize };
  }

  /** Deletes the objects of uploads ahead that no commit claimed, once each has settled. */
  async #deleteUploadsAhead(records: readonly UploadAhead[]): Promise<void> {
    const ctx = this.#ctx;
    const sizes = await Promise.all(records.map((record) => record.result));
    const doomed = records.filter((_, i) => (sizes[i] ?? 0) > 0).map((record) => [record.index, record.generation] as const);
    if (doomed.length === 0 || ctx.state() === "closed") return;
    await ctx.chunks.deleteGenerations(doomed).catch((error: unknown) => {
      ctx.logger?.warn({ err: error, volumeId: ctx.volumeId }, "could not delete uploads ahead that were written over (the GC will)");
    });
  }
}

function isAllZero(data: Buffer): boolean {
  for (let offset = 0; offset < data.length; offset += ZEROS.length) {
    const length = Math.min(ZEROS.length, data.length - offset);
    if (data.compare(ZEROS, 0, length, offset, offset + length) !== 0) return false;
  }
  return true;
}

/** Runs `task` over `items`, at most `limit` at a time; stops starting new ones after a failure. */
export async function runLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}
