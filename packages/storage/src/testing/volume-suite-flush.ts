/** The Volume suite (volume-suite.ts): flushes, backpressure, store and commit failures, FUA. */
import { beforeAll, expect, it } from "vitest";
import type { ChunkCommit, ChunkIndex } from "../chunk-index";
import { StorageError } from "../errors";
import type { ObjectStore } from "../object-store/object-store";
import { parseChunkKey } from "../volume/chunk-layout";
import { Volume } from "../volume/volume";
import { MemoryChunkIndex } from "./memory-chunk-index";
import { seededBytes } from "./seeded-random";
import { CHUNK, type VolumeSuiteFixture } from "./volume-suite-fixture";
import { waitFor } from "./wait-for";

export function describeFlushCases(f: VolumeSuiteFixture): void {
  const { setup, keysOf, readAll } = f;
  let store: ObjectStore;
  beforeAll(() => {
    store = f.store;
  });

  it("keeps writes that land while a flush is uploading, and uploads a consistent copy", async () => {
    const { open, index, faulty, volumeId, freshCacheDir } = setup();
    const volume = await open();
    const first = seededBytes(CHUNK, 21);
    const second = seededBytes(CHUNK, 22);
    await volume.write(0, first);
    const release = faulty.hold("put");
    const flushing = volume.flush();
    await waitFor(() => faulty.heldCount("put") === 1, "the upload to start");
    await volume.write(100, second.subarray(100, 200)); // same chunk, mid-upload
    await volume.write(3 * CHUNK, second); // another chunk, not in this flush
    release();
    await flushing;

    const expected = Buffer.from(first);
    second.copy(expected, 100, 100, 200);
    expect((await readAll(volume, 0, CHUNK)).equals(expected)).toBe(true);
    expect(volume.stats().dirtyBytes).toBe(2 * CHUNK);
    // What the first flush committed is exactly the chunk as it was when the upload began.
    const committedView = await Volume.open({ volumeId, size: volume.size, chunkSize: CHUNK, store, index, cacheDir: freshCacheDir() });
    expect((await readAll(committedView, 0, CHUNK)).equals(first)).toBe(true);
    expect((await readAll(committedView, 3 * CHUNK, CHUNK)).equals(Buffer.alloc(CHUNK))).toBe(true);
    committedView.abandon();

    await volume.flush();
    expect(volume.stats().dirtyBytes).toBe(0);
    await volume.close();
    const reopened = await open();
    expect((await readAll(reopened, 0, CHUNK)).equals(expected)).toBe(true);
    expect((await readAll(reopened, 3 * CHUNK, CHUNK)).equals(second)).toBe(true);
    await reopened.close();
  });

  it("serialises concurrent flushes; a later flush covers writes made after an earlier one began", async () => {
    const { open, index, faulty } = setup();
    const volume = await open();
    await volume.write(0, seededBytes(CHUNK, 31));
    const release = faulty.hold("put");
    const firstFlush = volume.flush();
    await waitFor(() => faulty.heldCount("put") === 1, "the first upload");
    await volume.write(2 * CHUNK, seededBytes(CHUNK, 32));
    const secondFlush = volume.flush();
    const sharedFlush = volume.flush(); // queued behind the running one: shares the second's commit
    release();
    await Promise.all([firstFlush, secondFlush, sharedFlush]);
    expect(index.commits.map((c) => [c.epoch, c.set.map(([i]) => i)])).toEqual([
      [1, [0]],
      [2, [2]],
    ]);
    expect(volume.stats().dirtyBytes).toBe(0);
    await volume.close();
  });

  it("applies backpressure with a tiny dirty limit: writes wait, none fail, nothing is lost", async () => {
    const { open, index } = setup();
    const volume = await open({ dirtyLimitBytes: CHUNK, uploadConcurrency: 2 });
    const reference = seededBytes(volume.size, 41);
    // Many writes at once, each a chunk and a half: the limit is crossed again and again.
    const piece = CHUNK + CHUNK / 2;
    const writes: Promise<void>[] = [];
    for (let offset = 0; offset < volume.size; offset += piece) {
      const length = Math.min(piece, volume.size - offset);
      writes.push(volume.write(offset, reference.subarray(offset, offset + length)));
    }
    await Promise.all(writes);
    expect(index.commits.length).toBeGreaterThan(0); // background flushes ran before any flush()
    expect(volume.stats().dirtyBytes).toBeLessThanOrEqual(volume.size);
    await volume.flush();
    await volume.close();
    const reopened = await open();
    expect((await readAll(reopened)).equals(reference)).toBe(true);
    await reopened.close();
  });

  it("keeps writes waiting (not failing) while background flushes fail, then drains", async () => {
    const { open, faulty } = setup();
    const volume = await open({ dirtyLimitBytes: CHUNK });
    const reference = seededBytes(4 * CHUNK, 42);
    faulty.failNext("put", 3);
    for (let i = 0; i < 4; i++) await volume.write(i * CHUNK, reference.subarray(i * CHUNK, (i + 1) * CHUNK));
    await volume.flush();
    await volume.close();
    const reopened = await open();
    expect((await readAll(reopened, 0, 4 * CHUNK)).equals(reference)).toBe(true);
    await reopened.close();
  });

  it("rejects flush with EIO when uploads fail, keeps the data, and a later flush succeeds", async () => {
    const { open, faulty, index, volumeId } = setup();
    const volume = await open();
    const reference = seededBytes(3 * CHUNK, 51);
    await volume.write(CHUNK / 2, reference);
    faulty.fail("put");
    await expect(volume.flush()).rejects.toMatchObject({ name: "StorageError", code: "EIO" });
    expect(volume.stats()).toMatchObject({ dirtyBytes: 4 * CHUNK, epoch: 0 });
    expect((await readAll(volume, CHUNK / 2, 3 * CHUNK)).equals(reference)).toBe(true);
    expect(index.commits).toEqual([]);
    faulty.heal();
    await volume.flush();
    expect(volume.stats()).toMatchObject({ dirtyBytes: 0, chunksStored: 4 });
    // One commit landed, at a later epoch than 1: a failed attempt's epoch is never reused (its uploads
    // may have reached the store), and the background retries may have failed a few more times.
    expect(index.commits).toHaveLength(1);
    expect(volume.stats().epoch).toBe(index.snapshot().epoch);
    expect(index.snapshot().epoch).toBeGreaterThan(1);
    await volume.close();
    expect((await keysOf(volumeId)).length).toBe(4);
    const reopened = await open();
    expect((await readAll(reopened, CHUNK / 2, 3 * CHUNK)).equals(reference)).toBe(true);
    await reopened.close();
  });

  it("rejects flush with EIO when the commit fails, and the next flush commits everything", async () => {
    const { volumeId, freshCacheDir } = setup();
    const inner = new MemoryChunkIndex();
    let failCommits = 1;
    const index: ChunkIndex = {
      load: () => inner.load(),
      commit: (commit: ChunkCommit) => (failCommits-- > 0 ? Promise.reject(new Error("database unreachable")) : inner.commit(commit)),
    };
    const volume = await Volume.open({ volumeId, size: 8 * CHUNK, chunkSize: CHUNK, store, index, cacheDir: freshCacheDir() });
    const data = seededBytes(2 * CHUNK, 52);
    await volume.write(0, data);
    const error = await volume.flush().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: "EIO" });
    expect(volume.stats()).toMatchObject({ epoch: 0, dirtyBytes: 2 * CHUNK });
    await volume.flush();
    expect(volume.stats()).toMatchObject({ epoch: 2, dirtyBytes: 0 }); // the failed attempt's epoch is not reused
    expect(inner.commits).toHaveLength(1);
    // The failed attempt's two objects stay for the GC's orphan rule: the volume cannot know that a
    // commit which did not land by now never will.
    expect((await keysOf(volumeId)).length).toBe(4);
    expect([...inner.snapshot().chunks.values()].map((ref) => ref.generation)).toEqual([2 * 65_536, 2 * 65_536]);
    await volume.close();
    const reopened = await Volume.open({ volumeId, size: 8 * CHUNK, chunkSize: CHUNK, store, index: inner, cacheDir: freshCacheDir() });
    expect((await readAll(reopened, 0, 2 * CHUNK)).equals(data)).toBe(true);
    await reopened.close();
  });

  it("treats a commit whose answer was lost but which landed as done", async () => {
    const { volumeId, freshCacheDir } = setup();
    const inner = new MemoryChunkIndex();
    let loseAnswers = 1;
    const index: ChunkIndex = {
      load: () => inner.load(),
      commit: async (commit: ChunkCommit) => {
        await inner.commit(commit);
        if (loseAnswers-- > 0) throw new Error("connection reset after commit");
      },
    };
    const volume = await Volume.open({ volumeId, size: 8 * CHUNK, chunkSize: CHUNK, store, index, cacheDir: freshCacheDir() });
    const data = seededBytes(CHUNK, 54);
    await volume.write(CHUNK, data);
    await volume.flush();
    await volume.write(CHUNK, seededBytes(CHUNK, 55));
    await volume.flush(); // epoch 2 follows: the engine did not lose track of epoch 1
    expect(inner.snapshot().epoch).toBe(2);
    expect(inner.snapshot().chunks.get(1)!.generation).toBe(2 * 65_536);
    expect((await keysOf(volumeId)).map((key) => parseChunkKey(key)!.generation)).toEqual([65_536, 2 * 65_536]);
    await volume.close();
  });

  it("fails reads of a chunk the store cannot return with EIO", async () => {
    const { open, faulty, freshCacheDir } = setup();
    const volume = await open();
    await volume.write(0, seededBytes(CHUNK, 53));
    await volume.close();
    const reopened = await open({ cacheDir: freshCacheDir() });
    faulty.failNext("get", 1);
    await expect(reopened.read(0, Buffer.alloc(10))).rejects.toMatchObject({ code: "EIO" });
    expect((await readAll(reopened, 0, CHUNK)).equals(seededBytes(CHUNK, 53))).toBe(true);
    await reopened.close();
  });

  it("loses no large write made while commits run, whatever the order they land in", async () => {
    const { open, freshCacheDir } = setup();
    const volume = await open();
    const reference = seededBytes(2 * CHUNK, 61);
    await volume.write(0, reference);
    await volume.commit();
    const rounds: Promise<void>[] = [];
    for (let round = 0; round < 8; round++) {
      const piece = seededBytes(CHUNK / 2, 70 + round);
      const offset = (round % 2) * CHUNK + (Math.floor(round / 2) % 2) * (CHUNK / 2);
      piece.copy(reference, offset);
      rounds.push(volume.write(offset, piece));
      rounds.push(volume.commit());
    }
    await Promise.all(rounds);
    await volume.commit();
    expect(volume.stats().dirtyBytes).toBe(0);
    await volume.close();
    // Read back from the store alone: what it holds is every byte written.
    const reopened = await open({ cacheDir: freshCacheDir() });
    expect((await readAll(reopened, 0, 2 * CHUNK)).equals(reference)).toBe(true);
    await reopened.close();
  });

  it("makes a FUA write durable before it resolves", async () => {
    const { open, index } = setup();
    const volume = await open();
    await volume.write(10, Buffer.from("durable"), { fua: true });
    expect(index.snapshot().epoch).toBe(1);
    await volume.trim(0, CHUNK, { fua: true });
    expect(index.snapshot().chunks.size).toBe(0);
    await volume.close();
  });
}
