/**
 * A commit whose transaction landed but whose answer was lost (the connection dropped after
 * COMMIT, or the caller timed out while it was still running) looks like a failure to the volume.
 * The volume must recognise its own landed commit — in the same run and after a crash — rather
 * than treat the moved index as a conflict forever, and must never take another writer's commit
 * for its own. The index is wrapped to run the real commit and then answer with an error.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ChunkCommit, ChunkIndex, ChunkIndexSnapshot } from "../chunk-index";
import { StorageError } from "../errors";
import { MemoryObjectStore } from "../object-store/memory-store";
import { ManualClock } from "../testing/manual-clock";
import { MemoryChunkIndex } from "../testing/memory-chunk-index";
import { seededBytes } from "../testing/seeded-random";
import { chunkPrefix, GENERATIONS_PER_EPOCH } from "./chunk-layout";
import { Volume } from "./volume";

const CHUNK = 64 * 1024;
const VOLUME = "vol_lostack";
const roots: string[] = [];

afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

/** The real index, behind a connection that can drop answers. */
class LostAnswerIndex implements ChunkIndex {
  /** Commits that land, then fail as if the connection dropped after COMMIT. */
  loseAnswers = 0;
  /** Commits the caller gives up on (a timeout) before they land; `landLate` lands them. */
  timeOut = 0;
  /** Loads that fail (the connection is still down). */
  failLoads = 0;
  readonly #late: ChunkCommit[] = [];

  constructor(readonly real: MemoryChunkIndex) {}

  async load(): Promise<ChunkIndexSnapshot> {
    if (this.failLoads > 0) {
      this.failLoads--;
      throw new StorageError("EIO", "loading the chunk map failed: connection terminated");
    }
    return this.real.load();
  }

  async commit(commit: ChunkCommit): Promise<void> {
    if (this.timeOut > 0) {
      this.timeOut--;
      this.#late.push(commit);
      throw new StorageError("EIO", "commit failed: query timed out");
    }
    await this.real.commit(commit);
    if (this.loseAnswers > 0) {
      this.loseAnswers--;
      throw new StorageError("EIO", "commit failed: connection terminated unexpectedly");
    }
  }

  /** The timed-out transactions finish after all. */
  async landLate(): Promise<void> {
    for (const commit of this.#late.splice(0)) await this.real.commit(commit);
  }
}

function setup() {
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), "stratus-lostack-"));
  roots.push(cacheDir);
  const store = new MemoryObjectStore();
  const real = new MemoryChunkIndex();
  const index = new LostAnswerIndex(real);
  const clock = new ManualClock();
  const open = (chunkIndex: ChunkIndex = index) =>
    Volume.open({
      volumeId: VOLUME,
      size: 16 * CHUNK,
      chunkSize: CHUNK,
      store,
      index: chunkIndex,
      cacheDir,
      durability: "local",
      commitIntervalMs: 3_600_000,
      writeBehind: false,
      clock,
    });
  const chunkObjects = async () => (await store.list({ prefix: chunkPrefix(VOLUME) })).objects.length;
  return { store, real, index, clock, open, chunkObjects };
}

async function readAll(volume: Volume, offset: number, length: number): Promise<Buffer> {
  const target = Buffer.alloc(length);
  await volume.read(offset, target);
  return target;
}

describe("a commit whose answer was lost", () => {
  it("is adopted by the next cycle of the same run: no conflict, nothing committed twice", async () => {
    const { real, index, open, chunkObjects } = setup();
    const volume = await open();
    const data = seededBytes(3 * CHUNK, 1);
    await volume.write(0, data);
    index.loseAnswers = 1;
    index.failLoads = 1; // the check right after the failure cannot reach the index either
    await expect(volume.commit()).rejects.toThrow(/connection terminated/);
    expect(real.commits).toHaveLength(1); // it landed

    await volume.commit(); // the retry
    expect(real.commits).toHaveLength(1);
    expect(volume.stats()).toMatchObject({ epoch: real.snapshot().epoch, dirtyBytes: 0, chunksStored: 3 });
    expect(await chunkObjects()).toBe(3); // not uploaded again
    expect((await readAll(volume, 0, 3 * CHUNK)).equals(data)).toBe(true);
    await volume.close();
  });

  it("is adopted when it lands after the caller gave up; later writes commit on top of it", async () => {
    const { real, index, open } = setup();
    const volume = await open();
    const first = seededBytes(2 * CHUNK, 2);
    await volume.write(0, first);
    index.timeOut = 1;
    await expect(volume.commit()).rejects.toThrow(/timed out/);
    expect(real.commits).toHaveLength(0); // the check saw the old map: not landed (yet)
    await index.landLate();

    const second = seededBytes(CHUNK, 3);
    await volume.write(5 * CHUNK, second);
    await volume.commit();
    expect(real.commits).toHaveLength(2);
    expect(real.commits[1]!.set.map(([chunk]) => chunk)).toEqual([5]); // chunks 0 and 1 not committed again
    expect(real.commits[1]!.previousEpoch).toBe(real.commits[0]!.epoch);
    expect(volume.stats()).toMatchObject({ epoch: real.snapshot().epoch, dirtyBytes: 0, chunksStored: 3 });
    await volume.close();
  });

  it("is recognised after a crash: the reopened cache holds it clean, and a chunk written since stays dirty", async () => {
    const { real, index, open, chunkObjects } = setup();
    const volume = await open();
    const data = seededBytes(3 * CHUNK, 4);
    await volume.write(0, data);
    index.loseAnswers = 1;
    index.failLoads = Infinity; // down until the crash: no retry learns the outcome
    await expect(volume.commit()).rejects.toThrow(/connection terminated/);
    const newer = seededBytes(CHUNK, 5);
    await volume.write(2 * CHUNK, newer); // after the lost commit: it must not pass for committed
    await volume.syncLocally();
    volume.abandon(); // kill -9

    const reopened = await open(real);
    expect(reopened.stats().dirtyBytes).toBe(CHUNK); // only chunk 2
    await reopened.commit();
    expect(real.commits).toHaveLength(2);
    expect(real.commits[1]!.set.map(([chunk]) => chunk)).toEqual([2]);
    expect(await chunkObjects()).toBe(4); // 3 landed + the newer chunk 2, nothing uploaded twice
    const expected = Buffer.concat([data.subarray(0, 2 * CHUNK), newer]);
    expect((await readAll(reopened, 0, 3 * CHUNK)).equals(expected)).toBe(true);
    await reopened.close();
  });

  it("is never confused with another writer's commit at the same epoch", async () => {
    const { real, index, open } = setup();
    const volume = await open();
    await volume.write(0, seededBytes(CHUNK, 6));
    index.timeOut = 1; // ours never lands
    await expect(volume.commit()).rejects.toThrow(/timed out/);
    // Another writer (another fencing token, so another salt) commits the same epoch over the same chunk.
    const generation = 1 * GENERATIONS_PER_EPOCH + 7;
    await real.commit({ previousEpoch: 0, epoch: 1, set: [[0, { generation, storedSize: CHUNK }]], remove: [], garbage: [] });

    await expect(volume.commit()).rejects.toThrow(/refused/);
    expect(volume.stats()).toMatchObject({ epoch: 0, dirtyBytes: CHUNK });
    volume.abandon();
    // After a crash too, our dirty chunk is not taken for the other writer's object.
    const reopened = await open(real);
    expect(reopened.stats().dirtyBytes).toBe(CHUNK);
    reopened.abandon();
    expect(real.commits).toHaveLength(1);
  });
});
