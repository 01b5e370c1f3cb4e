/** The Volume suite (volume-suite.ts): durability, commit timing and write-behind. */
import { beforeAll, expect, it } from "vitest";
import type { ObjectStore } from "../object-store/object-store";
import { parseChunkKey } from "../volume/chunk-layout";
import { Volume, type ChunkUploader, type CommittedMap, type UploadTask } from "../volume/volume";
import { ManualClock } from "./manual-clock";
import { MemoryChunkIndex } from "./memory-chunk-index";
import { seededBytes } from "./seeded-random";
import { CHUNK, type Setup, type VolumeSuiteFixture } from "./volume-suite-fixture";
import { waitFor } from "./wait-for";

export function describeCommitCases(f: VolumeSuiteFixture): void {
  const { setup, keysOf, readAll } = f;
  let store: ObjectStore;
  beforeAll(() => {
    store = f.store;
  });

  // ---- the disk cache, durability and the commit cycle ------------------------------------------

  it("durability local: FLUSH touches no store; a crash keeps every write; dirty chunks are re-queued on open", async () => {
    const { open, faulty, index } = setup();
    // Without write-behind: uploads ahead of a commit would touch the store (they have tests of their own).
    const volume = await open({ durability: "local", commitIntervalMs: 3_600_000, writeBehind: false });
    const reference = seededBytes(5 * CHUNK, 91);
    await volume.write(1000, reference);
    await volume.trim(8 * CHUNK, CHUNK);
    await volume.flush();
    expect(faulty.calls).toEqual({ put: 0, get: 0, head: 0, deleteMany: 0, list: 0 });
    expect(index.snapshot().epoch).toBe(0);
    volume.abandon(); // kill -9: no close, no commit

    const reopened = await open({ durability: "local", commitIntervalMs: 3_600_000 });
    // The replayed dirty chunks are committed at once, without any flush.
    await waitFor(() => index.snapshot().epoch === 1, "the re-queued commit");
    expect(index.snapshot().chunks.size).toBe(6);
    expect((await readAll(reopened, 1000, 5 * CHUNK)).equals(reference)).toBe(true);
    await waitFor(() => reopened.stats().dirtyBytes === 0, "chunks to turn clean");
    expect(reopened.stats()).toMatchObject({ epoch: 1, queueDepth: 0, compressionRatio: 1, cachedBytes: 6 * CHUNK });
    expect(reopened.stats().lastCommitAt).toBeTypeOf("number");
    await reopened.close();
  });

  it("durability cloud: FLUSH returns after the commit of everything written before it", async () => {
    const { open, index } = setup();
    const commits: CommittedMap[] = [];
    const volume = await open({ durability: "cloud", onCommitted: (c) => void commits.push(c) });
    await volume.write(3 * CHUNK + 1, seededBytes(100, 92));
    await volume.flush();
    expect(index.snapshot().epoch).toBe(1);
    expect(commits.map((c) => [c.epoch, [...c.chunks.keys()]])).toEqual([[1, [3]]]);
    expect(volume.stats().dirtyBytes).toBe(0);
    await volume.close();
  });

  it("durability cloud: FLUSH does not wait for the commit's background work; close does, the final commit's too", async () => {
    const { open } = setup();
    const gates: Array<{ finish: () => void; done: boolean }> = [];
    const onCommitted = (c: CommittedMap) => {
      const gate = { finish: () => {}, done: false };
      gates.push(gate);
      c.inBackground(new Promise<void>((resolve) => (gate.finish = resolve)).then(() => void (gate.done = true)));
    };
    const volume = await open({ durability: "cloud", onCommitted });
    await volume.write(0, seededBytes(100, 94));
    await volume.flush(); // would never return if it waited for the gate
    expect(gates).toHaveLength(1);
    gates[0]!.finish();
    await volume.write(CHUNK, seededBytes(100, 95));
    let closed = false;
    const closing = volume.close().then(() => void (closed = true));
    await waitFor(() => gates.length === 2, "the final commit");
    // A negative check: without the wait, close would end within a few event-loop turns (its cache sync).
    for (let turn = 0; turn < 50 && !closed; turn++) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(closed).toBe(false);
    gates[1]!.finish();
    await closing;
    expect(gates.map((gate) => gate.done)).toEqual([true, true]);
  });

  it("commits in the background within the commit interval (durability local)", async () => {
    const { open, index } = setup();
    const clock = new ManualClock();
    const volume = await open({ durability: "local", commitIntervalMs: 20, clock });
    await volume.write(0, seededBytes(CHUNK, 93));
    await volume.flush();
    await clock.advance(19);
    expect(index.snapshot().epoch).toBe(0);
    await clock.advance(1);
    await waitFor(() => index.snapshot().epoch === 1, "the interval commit");
    await volume.close();
  });

  // ---- write-behind (uploads ahead of the commit) ---------------------------------------------------

  /** Writes `data` at `offset` in quarter-chunk pieces, in order, as a copy program does. */
  async function writeInOrder(volume: Volume, offset: number, data: Buffer): Promise<void> {
    for (let done = 0; done < data.length; done += CHUNK / 4) await volume.write(offset + done, data.subarray(done, Math.min(done + CHUNK / 4, data.length)));
  }

  /** Reopens with an empty cache and checks that the volume starts with `reference` (every chunk from the store). */
  async function expectColdReadBack(s: Setup, reference: Buffer): Promise<void> {
    const reopened = await s.open({ cacheDir: s.freshCacheDir() });
    expect((await readAll(reopened, 0, reference.length)).equals(reference)).toBe(true);
    await reopened.close();
  }

  it("write-behind: chunks a sequential writer finished reach the store before the flush, and the commit reuses them", async () => {
    const s = setup();
    const { open, faulty, index } = s;
    const volume = await open({ durability: "cloud" });
    const reference = seededBytes(8 * CHUNK, 101);
    await writeInOrder(volume, 0, reference);
    await waitFor(() => faulty.calls.put === 8, "the uploads ahead");
    expect(index.snapshot().epoch).toBe(0); // stored, but no commit names them yet
    await volume.flush();
    expect(faulty.calls.put).toBe(8); // the commit uploaded nothing again
    expect(index.commits).toHaveLength(1);
    expect(index.snapshot().epoch).toBe(1);
    await volume.close();
    await expectColdReadBack(s, reference);
  });

  it("write-behind: a chunk written again after its upload ahead is uploaded again, and the stale object is deleted", async () => {
    const s = setup();
    const { open, faulty, volumeId } = s;
    const volume = await open({ durability: "cloud" });
    const reference = seededBytes(4 * CHUNK, 102);
    await writeInOrder(volume, 0, reference);
    await waitFor(() => faulty.calls.put === 4, "the uploads ahead");
    const patch = seededBytes(4096, 103);
    await volume.write(CHUNK + 100, patch);
    patch.copy(reference, CHUNK + 100);
    await volume.flush();
    expect(faulty.calls.put).toBe(5);
    await volume.close(); // waits for the deletion
    const keys = await keysOf(volumeId);
    expect(keys.filter((key) => parseChunkKey(key)?.index === 1)).toHaveLength(1);
    expect(keys.filter((key) => parseChunkKey(key) !== undefined)).toHaveLength(4);
    await expectColdReadBack(s, reference);
  });

  it("write-behind: a write after the freeze, while uploads ahead are in flight, is not part of the commit", async () => {
    const s = setup();
    const { open, faulty, index } = s;
    const volume = await open({ durability: "cloud" });
    const releasePuts = faulty.hold("put");
    const reference = seededBytes(2 * CHUNK, 104);
    await writeInOrder(volume, 0, reference);
    await waitFor(() => faulty.heldCount("put") === 2, "the uploads ahead, parked");
    const flushed = volume.flush();
    await volume.write(0, seededBytes(4096, 105)); // after the freeze: not part of this commit
    releasePuts();
    await flushed;
    expect(faulty.calls.put).toBe(2); // the two uploads ahead, claimed by the commit
    const [commit] = index.commits;
    expect(commit!.set.map(([chunk]) => chunk)).toEqual([0, 1]);
    await volume.close();
    // Open the bucket as that commit left it: its objects hold the content as of the flush.
    const atFlush = new MemoryChunkIndex();
    await atFlush.commit({ previousEpoch: 0, epoch: commit!.epoch, set: commit!.set, remove: [], garbage: [] });
    const reopened = await Volume.open({ volumeId: s.volumeId, size: 16 * CHUNK, chunkSize: CHUNK, store, index: atFlush, cacheDir: s.freshCacheDir() });
    expect((await readAll(reopened, 0, 2 * CHUNK)).equals(reference)).toBe(true);
    await reopened.close();
  });

  it("write-behind: uploads ahead run in-process; one that failed is retried by its commit through the ChunkUploader", async () => {
    const s = setup();
    const { open, faulty, index } = s;
    const tasks: UploadTask[] = [];
    const uploader: ChunkUploader = {
      upload: (task) => {
        tasks.push(task);
        return volume.uploadFrozenChunk(task.commitId, task.index, task.generation);
      },
    };
    const volume = await open({ durability: "cloud", uploader });
    faulty.failNext("put", 1); // the first upload ahead fails (no retrying store below the volume here)
    const reference = seededBytes(3 * CHUNK, 106);
    await writeInOrder(volume, 0, reference);
    await waitFor(() => faulty.calls.put === 3, "the uploads ahead");
    expect(tasks).toEqual([]); // none of them was a queued task
    await volume.flush();
    // Only the failed one went through the uploader, under its own upload-ahead generation.
    expect(tasks).toHaveLength(1);
    expect(tasks[0]!.commitId).toMatch(/:ahead:/);
    expect(faulty.calls.put).toBe(4);
    const [commit] = index.commits;
    expect(commit!.set.map(([chunk, ref]) => [chunk, ref.generation])).toContainEqual([tasks[0]!.index, tasks[0]!.generation]);
    await volume.close();
    await expectColdReadBack(s, reference);
  });

  it("commitIdleMs: a flushed burst is committed soon after it ends, without commit()", async () => {
    const { open, index } = setup();
    const clock = new ManualClock();
    const volume = await open({ durability: "local", commitIntervalMs: 3_600_000, commitIdleMs: 50, clock });
    await volume.write(CHUNK + 10, seededBytes(3000, 96));
    await volume.flush();
    await clock.advance(49);
    expect(index.snapshot().epoch).toBe(0);
    await clock.advance(1); // a quiet spell of commitIdleMs after a flushed write
    await waitFor(() => index.snapshot().epoch === 1, "the idle commit");
    await waitFor(() => volume.stats().dirtyBytes === 0, "chunks to turn clean");
    expect([...index.snapshot().chunks.keys()]).toEqual([1]);
    await volume.close();
  });

  it("commitIdleMs: a writer that never pauses that long is not committed until it stops", async () => {
    const { open, index } = setup();
    // Flushing after every write: an idle rule that fired commitIdleMs after the FIRST write would commit.
    const clock = new ManualClock();
    const volume = await open({ durability: "local", commitIntervalMs: 3_600_000, commitIdleMs: 250, clock });
    // A write and flush every 10 ms for 750 ms: three idle periods, none of them quiet.
    for (let writes = 0; writes < 75; writes++) {
      await volume.write((writes % 4) * CHUNK, seededBytes(4096, 300 + writes));
      await volume.flush();
      expect(index.snapshot().epoch).toBe(0);
      await clock.advance(10);
    }
    expect(index.snapshot().epoch).toBe(0);
    await clock.advance(500); // the writer stopped: within two idle periods the rule commits
    await waitFor(() => index.snapshot().epoch === 1, "the commit after the writer stopped");
    expect(index.snapshot().chunks.size).toBe(4);
    await volume.close();
  });

  it("commitIdleMs: a pause after unflushed writes commits nothing until the flush comes", async () => {
    const { open, index } = setup();
    const clock = new ManualClock();
    const volume = await open({ durability: "local", commitIntervalMs: 3_600_000, commitIdleMs: 50, clock });
    await volume.write(5 * CHUNK, seededBytes(100, 97));
    await clock.advance(250); // five idle periods: the bucket must wait for a flush's state
    expect(index.snapshot().epoch).toBe(0);
    await volume.flush();
    await waitFor(() => index.snapshot().epoch === 1, "the commit at the flush after the pause");
    expect([...index.snapshot().chunks.keys()]).toEqual([5]);
    await volume.close();
  });

  it("commitIdleMs does not shorten the interval's fallback: unflushed writes wait a whole interval for a flush", async () => {
    const { open, index } = setup();
    const clock = new ManualClock();
    const volume = await open({ durability: "local", commitIntervalMs: 400, commitIdleMs: 50, clock });
    await volume.write(2 * CHUNK, seededBytes(100, 98)); // the interval's ticks come at 400 and 800 ms
    await clock.advance(799);
    // The idle rule (50 ms) and the first tick (400 ms) only asked for the next flush.
    expect(index.snapshot().epoch).toBe(0);
    await clock.advance(1);
    await waitFor(() => index.snapshot().epoch === 1, "the interval's own commit");
    await volume.close();
  });
}
