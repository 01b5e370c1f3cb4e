/** The Volume suite (volume-suite.ts): warm restarts, freezes, injected uploads, readNow / writeNow. */
import { beforeAll, expect, it } from "vitest";
import type { ObjectStore } from "../object-store/object-store";
import { Volume, type ChunkUploader, type UploadTask } from "../volume/volume";
import { seededBytes } from "./seeded-random";
import { CHUNK, type VolumeSuiteFixture } from "./volume-suite-fixture";
import { waitFor } from "./wait-for";

export function describeFrozenCases(f: VolumeSuiteFixture): void {
  const { setup, freshCacheDir, readAll } = f;
  let store: ObjectStore;
  beforeAll(() => {
    store = f.store;
  });

  it("restarts warm: chunks cached at the committed generation are read without a GET", async () => {
    const { open, faulty, index, freshCacheDir } = setup();
    const volume = await open();
    const reference = seededBytes(volume.size, 94);
    await volume.write(0, reference);
    await volume.close();
    expect(faulty.calls.get).toBe(0);

    const reopened = await open();
    // Found at open, its chunks are cold (pages maybe on disk only): the synchronous path declines
    // them until a read has warmed them through the thread pool.
    const first = Buffer.alloc(4096);
    expect(reopened.readNow(0, first)).toBe(false);
    expect((await readAll(reopened)).equals(reference)).toBe(true);
    expect(faulty.calls.get).toBe(0);
    expect(reopened.readNow(0, first)).toBe(true);
    expect(first.equals(reference.subarray(0, 4096))).toBe(true);
    await reopened.close();

    // A chunk the index moved past (another writer committed) is not served from the stale cache.
    const other = await open({ cacheDir: freshCacheDir() });
    await other.write(2 * CHUNK, seededBytes(CHUNK, 95));
    await other.close();
    seededBytes(CHUNK, 95).copy(reference, 2 * CHUNK);
    const third = await open();
    expect((await readAll(third)).equals(reference)).toBe(true);
    expect(faulty.calls.get).toBe(1);
    expect(index.snapshot().epoch).toBe(2);
    await third.close();
  });

  it("freezes at the flush: writes to frozen chunks not yet uploaded are copied aside (copy-on-write)", async () => {
    const { open, index, faulty, volumeId } = setup();
    const volume = await open({ uploadConcurrency: 1 });
    const reference = Buffer.alloc(volume.size);
    for (let chunk = 0; chunk < 4; chunk++) {
      const data = seededBytes(CHUNK, 200 + chunk);
      await volume.write(chunk * CHUNK, data);
      data.copy(reference, chunk * CHUNK);
    }
    const atFlush = Buffer.from(reference);
    const release = faulty.hold("put");
    const flushing = volume.flush();
    await waitFor(() => faulty.heldCount("put") === 1, "the first upload");
    // Chunk 0 has been read for upload; 1..3 are frozen and unread. Change all of them.
    const writes: Promise<void>[] = [];
    for (const [offset, length] of [
      [10, 100],
      [CHUNK + 5, 3000],
      [3 * CHUNK - 7, 14],
    ] as const) {
      const data = seededBytes(length, offset);
      writes.push(volume.write(offset, data));
      data.copy(reference, offset);
    }
    writes.push(volume.trim(2 * CHUNK, CHUNK));
    reference.fill(0, 2 * CHUNK, 3 * CHUNK);
    await Promise.all(writes);
    expect((await readAll(volume)).equals(reference)).toBe(true);
    release();
    await flushing;

    const committedView = await Volume.open({ volumeId, size: volume.size, chunkSize: CHUNK, store, index, cacheDir: freshCacheDir() });
    expect((await readAll(committedView)).equals(atFlush)).toBe(true);
    committedView.abandon();
    expect((await readAll(volume)).equals(reference)).toBe(true);
    await volume.close();
    const reopened = await open({ cacheDir: freshCacheDir() });
    expect((await readAll(reopened)).equals(reference)).toBe(true);
    await reopened.close();
  });

  it("uploads through an injected ChunkUploader that calls back uploadFrozenChunk", async () => {
    const { open, index } = setup();
    const tasks: UploadTask[] = [];
    const opened: { volume?: Volume } = {};
    const uploader: ChunkUploader = {
      async upload(task) {
        tasks.push(task);
        await new Promise((resolve) => setImmediate(resolve)); // a queue hop
        return opened.volume!.uploadFrozenChunk(task.commitId, task.index, task.generation);
      },
    };
    const target = await open({ uploader, generationSalt: 3 });
    opened.volume = target;
    await target.write(0, seededBytes(2 * CHUNK, 96));
    await target.write(5 * CHUNK, Buffer.alloc(CHUNK)); // all zero: uploaded as nothing
    await target.flush();
    expect(tasks.map((t) => [t.volumeId, t.index, t.generation])).toEqual([
      [target.volumeId, 0, 65_539],
      [target.volumeId, 1, 65_539],
      [target.volumeId, 5, 65_539],
    ]);
    expect([...index.snapshot().chunks.keys()]).toEqual([0, 1]);
    await expect(target.uploadFrozenChunk(tasks[0]!.commitId, 0, 65_539)).rejects.toMatchObject({ code: "ENOTFOUND" });
    await target.close();
  });

  it("serves cached reads and applies cacheable writes synchronously (readNow / writeNow), and declines the rest", async () => {
    const { open, freshCacheDir } = setup();
    const volume = await open();
    const data = seededBytes(3 * CHUNK, 99);
    expect(volume.writeNow(0, data)).toBe(true); // new chunks: applied at once
    // On a cloud volume whole chunks written into new files went to the disk with O_DIRECT and are
    // cold: the first read warms them off the event loop (no request to the store). Then, on any
    // volume, reads are synchronous.
    expect((await readAll(volume, 0, 3 * CHUNK)).equals(data)).toBe(true);
    const got = Buffer.alloc(CHUNK);
    expect(volume.readNow(CHUNK / 2, got)).toBe(true);
    expect(got.equals(data.subarray(CHUNK / 2, CHUNK / 2 + CHUNK))).toBe(true);
    expect(volume.readNow(5 * CHUNK, Buffer.alloc(4096))).toBe(false); // a hole: read() reports it as one
    expect(volume.readNow(volume.size - 10, Buffer.alloc(4096))).toBe(false); // past the end: read() refuses it
    expect(volume.writeNow(volume.size - 10, Buffer.alloc(4096))).toBe(false);
    await expect(volume.write(volume.size - 10, Buffer.alloc(4096))).rejects.toMatchObject({ code: "ENOSPC" });
    await volume.close();

    // Committed and not cached here: a read needs the store, and so does a partial write.
    const cold = await open({ cacheDir: freshCacheDir() });
    expect(cold.readNow(0, Buffer.alloc(4096))).toBe(false);
    expect(cold.writeNow(4096, Buffer.alloc(4096, 7))).toBe(false);
    expect(cold.writeNow(CHUNK, Buffer.alloc(CHUNK, 8))).toBe(true); // a whole chunk needs nothing fetched
    await cold.write(4096, Buffer.alloc(4096, 7)); // fetches, then patches
    expect(cold.readNow(0, Buffer.alloc(4096))).toBe(true); // now cached
    const expected = Buffer.from(data);
    expected.fill(7, 4096, 8192);
    expected.fill(8, CHUNK, 2 * CHUNK);
    expect((await readAll(cold, 0, 3 * CHUNK)).equals(expected)).toBe(true);
    await cold.close();
  });

  it("declines writeNow while the dirty limit is reached, and write() waits instead", async () => {
    const { open } = setup();
    const volume = await open({ dirtyLimitBytes: CHUNK });
    expect(volume.writeNow(0, seededBytes(CHUNK, 5))).toBe(true);
    expect(volume.writeNow(CHUNK, seededBytes(CHUNK, 6))).toBe(false);
    await volume.write(CHUNK, seededBytes(CHUNK, 6)); // waits for the commit that makes room
    expect((await readAll(volume, CHUNK, CHUNK)).equals(seededBytes(CHUNK, 6))).toBe(true);
    await volume.close();
  });

  it("runs one upload when a chunk's upload is asked for twice at once, and retries with the same bytes", async () => {
    const { open, index, faulty } = setup();
    const opened: { volume?: Volume } = {};
    const uploader: ChunkUploader = {
      async upload(task) {
        // A queue that hands the same job out twice (a redelivery) while the first run is in flight,
        // and runs a failed job again (as BullMQ's retries do).
        const both = () => Promise.all([0, 1].map(() => opened.volume!.uploadFrozenChunk(task.commitId, task.index, task.generation)));
        const results = await both().catch(() => both());
        expect(results[1]).toEqual(results[0]);
        return results[0]!;
      },
    };
    const target = await open({ uploader });
    opened.volume = target;
    const data = seededBytes(2 * CHUNK, 98);
    await target.write(0, data);
    const puts = faulty.calls.put;
    faulty.failNext("put", 1); // a failed attempt: its retry uploads the content the commit kept
    await target.flush();
    expect(faulty.calls.put - puts).toBe(3); // 2 chunks, one retried; no duplicate from the second ask
    expect([...index.snapshot().chunks.keys()]).toEqual([0, 1]);
    await target.close();
    const reopened = await open({ cacheDir: setup().freshCacheDir() });
    expect((await readAll(reopened, 0, 2 * CHUNK)).equals(data)).toBe(true);
    await reopened.close();
  });
}
