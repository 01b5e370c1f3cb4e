/**
 * The one Volume test suite, run over every object store (memory, directory, S3) with an
 * in-memory ChunkIndex. Each test uses its own volume id, so one store serves the whole file.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChunkCommit, ChunkIndex } from "../chunk-index";
import { StorageError } from "../errors";
import type { ObjectStore } from "../object-store/object-store";
import { chunkPrefix, parseChunkKey, volumePrefix } from "../volume/chunk-layout";
import { deleteVolumeObjects } from "../volume/delete-volume-objects";
import { Volume, type VolumeOptions } from "../volume/volume";
import { FaultyObjectStore, waitFor } from "./faulty-object-store";
import { MemoryChunkIndex } from "./memory-chunk-index";
import { seededBytes } from "./seeded-random";

export interface VolumeSuiteStore {
  /** Called once for the file; the suite closes the store at the end. */
  create(): Promise<ObjectStore>;
  /** Runs after the store is closed (remove temp dirs, stop servers). */
  cleanup?(): Promise<void>;
}

const KiB = 1024;
const CHUNK = 64 * KiB;

export function describeVolumeSuite(name: string, factory: VolumeSuiteStore): void {
  describe(`Volume: ${name}`, () => {
    let store: ObjectStore;
    let volumeCount = 0;

    beforeAll(async () => {
      store = await factory.create();
    });

    afterAll(async () => {
      await store?.close();
      await factory.cleanup?.();
    });

    interface Setup {
      volumeId: string;
      index: MemoryChunkIndex;
      faulty: FaultyObjectStore;
      open(overrides?: Partial<VolumeOptions>): Promise<Volume>;
    }

    function setup(size = 16 * CHUNK): Setup {
      const volumeId = `vol_${name.replace(/\W/g, "")}${++volumeCount}`;
      const index = new MemoryChunkIndex();
      const faulty = new FaultyObjectStore(store);
      return {
        volumeId,
        index,
        faulty,
        open: (overrides) => Volume.open({ volumeId, size, chunkSize: CHUNK, store: faulty, index, ...overrides }),
      };
    }

    async function keysOf(volumeId: string): Promise<string[]> {
      const keys: string[] = [];
      let startAfter: string | undefined;
      for (;;) {
        const page = await store.list({ prefix: volumePrefix(volumeId), startAfter });
        keys.push(...page.objects.map((o) => o.key));
        if (!page.truncated) return keys;
        startAfter = keys.at(-1);
      }
    }

    async function readAll(volume: Volume, offset = 0, length = volume.size): Promise<Buffer> {
      const target = Buffer.alloc(length, 0xee);
      await volume.read(offset, target);
      return target;
    }

    it("reads a fresh volume as zeros, one hole, no objects", async () => {
      const { volumeId, open } = setup();
      const volume = await open();
      expect((await readAll(volume)).equals(Buffer.alloc(volume.size))).toBe(true);
      expect(await volume.blockStatus(0, volume.size)).toEqual([{ length: volume.size, hole: true, zero: true }]);
      await volume.flush();
      expect(await keysOf(volumeId)).toEqual([]);
      expect(volume.stats()).toMatchObject({ storedBytes: 0, chunksStored: 0, dirtyBytes: 0, epoch: 0, logicalBytes: volume.size });
      expect(volume.capabilities).toEqual({
        readOnly: false,
        canFlush: true,
        canTrim: true,
        canZero: true,
        canFastZero: true,
        canCache: true,
        canMultiConn: true,
        allocationUnit: CHUNK,
      });
      await volume.close();
    });

    it("writes and reads at unaligned offsets across chunk boundaries", async () => {
      const { open } = setup();
      const volume = await open();
      const reference = Buffer.alloc(volume.size);
      const writes: Array<[number, number]> = [
        [1, 10],
        [CHUNK - 3, 7],
        [2 * CHUNK + 100, 3 * CHUNK + 5],
        [5 * CHUNK, CHUNK],
        [volume.size - 9, 9],
      ];
      for (const [offset, length] of writes) {
        const data = seededBytes(length, offset);
        await volume.write(offset, data);
        data.copy(reference, offset);
      }
      expect((await readAll(volume)).equals(reference)).toBe(true);
      expect((await readAll(volume, CHUNK - 5, 20)).equals(reference.subarray(CHUNK - 5, CHUNK + 15))).toBe(true);
      await volume.close();
    });

    it("serves cached reads synchronously: the target is filled before the promise settles", async () => {
      const { open } = setup();
      const volume = await open();
      const data = seededBytes(4 * KiB, 7);
      await volume.write(CHUNK - 2 * KiB, data);
      const target = Buffer.alloc(4 * KiB);
      const pending = volume.read(CHUNK - 2 * KiB, target);
      expect(target.equals(data)).toBe(true);
      await pending;
      await volume.close();
    });

    it("flushes, then a new Volume on the same store and index reads the same bytes", async () => {
      // A size that is not a multiple of the chunk size: the last chunk is short.
      const { open, volumeId } = setup(5 * CHUNK + 1000);
      const volume = await open();
      const reference = Buffer.alloc(volume.size);
      for (const [offset, length] of [
        [0, 100],
        [CHUNK + 17, 2 * CHUNK],
        [5 * CHUNK, 1000],
      ] as const) {
        const data = seededBytes(length, offset + 1);
        await volume.write(offset, data);
        data.copy(reference, offset);
      }
      await volume.flush();
      expect(volume.stats().dirtyBytes).toBe(0);
      const keys = await keysOf(volumeId);
      expect(keys.map((key) => parseChunkKey(key)!.index)).toEqual([0, 1, 2, 3, 5]);
      await volume.close();

      const reopened = await open();
      expect((await readAll(reopened)).equals(reference)).toBe(true);
      expect(reopened.stats()).toMatchObject({ chunksStored: 5, storedBytes: 4 * CHUNK + 1000, epoch: 1 });
      await reopened.close();
    });

    it("stores no object for an all-zero chunk, and drops one that becomes zero", async () => {
      const { open, volumeId, faulty } = setup();
      const volume = await open();
      await volume.write(0, Buffer.alloc(3 * CHUNK)); // zeros written as data
      await volume.write(4 * CHUNK + 10, Buffer.alloc(100));
      await volume.flush();
      expect(await keysOf(volumeId)).toEqual([]);
      expect(faulty.calls.put).toBe(0);

      await volume.write(CHUNK, seededBytes(CHUNK, 3));
      await volume.flush();
      expect((await keysOf(volumeId)).length).toBe(1);
      await volume.write(CHUNK, Buffer.alloc(CHUNK));
      await volume.flush();
      expect(await keysOf(volumeId)).toEqual([]);
      expect((await readAll(volume)).equals(Buffer.alloc(volume.size))).toBe(true);
      expect(volume.stats()).toMatchObject({ chunksStored: 0, storedBytes: 0 });
      await volume.close();
    });

    it("keeps object keys in chunk order and one generation per chunk after each flush", async () => {
      const { open, volumeId } = setup();
      const volume = await open();
      for (const index of [9, 3, 15, 0, 7]) await volume.write(index * CHUNK + 5, seededBytes(10, index));
      await volume.flush();
      for (const index of [3, 15, 1]) await volume.write(index * CHUNK, seededBytes(CHUNK, index + 100));
      await volume.flush();
      const keys = await keysOf(volumeId);
      expect(keys.every((key) => key.startsWith(chunkPrefix(volumeId)))).toBe(true);
      const parts = keys.map((key) => parseChunkKey(key)!);
      expect(parts.map((p) => p.index)).toEqual([0, 1, 3, 7, 9, 15]);
      // Rewritten chunks have the second commit's generation; superseded ones are gone.
      expect(parts.map((p) => p.generation)).toEqual([1, 2, 2, 1, 1, 2]);
      await volume.close();
    });

    it("trims and zeroes whole chunks to holes and partial chunks to zeros", async () => {
      const { open, volumeId } = setup();
      const volume = await open();
      const reference = seededBytes(volume.size, 11);
      await volume.write(0, reference);
      await volume.flush();
      expect((await keysOf(volumeId)).length).toBe(16);

      const ranges: Array<[op: "trim" | "zero" | "zeroNoHole" | "fastZero", offset: number, length: number]> = [
        ["trim", CHUNK - 10, 2 * CHUNK + 20], // partial, whole chunk 1 and 2, partial
        ["zero", 4 * CHUNK + 1, 100], // partial only
        ["zeroNoHole", 6 * CHUNK, CHUNK], // whole chunk, NO_HOLE: still reads zeros
        ["fastZero", 8 * CHUNK, 2 * CHUNK], // whole chunks with FAST_ZERO
      ];
      for (const [op, offset, length] of ranges) {
        if (op === "trim") await volume.trim(offset, length);
        else await volume.writeZeroes(offset, length, { noHole: op === "zeroNoHole", fastZero: op === "fastZero" });
        reference.fill(0, offset, offset + length);
      }
      expect((await readAll(volume)).equals(reference)).toBe(true);
      const status = await volume.blockStatus(CHUNK, 2 * CHUNK);
      expect(status).toEqual([{ length: 2 * CHUNK, hole: true, zero: true }]);
      await volume.flush();
      const stored = (await keysOf(volumeId)).map((key) => parseChunkKey(key)!.index);
      expect(stored).not.toContain(1);
      expect(stored).not.toContain(2);
      expect(stored).not.toContain(8);
      expect(stored).not.toContain(9);
      expect(stored).toContain(0);
      expect(stored).toContain(4);
      await volume.close();

      const reopened = await open();
      expect((await readAll(reopened)).equals(reference)).toBe(true);
      await reopened.close();
    });

    it("trims a never-written volume without any request to the store", async () => {
      const { open, faulty } = setup();
      const volume = await open();
      await volume.trim(0, volume.size);
      await volume.writeZeroes(100, 3 * CHUNK);
      await volume.flush();
      expect(faulty.calls).toEqual({ put: 0, get: 0, head: 0, deleteMany: 0, list: 0 });
      await volume.close();
    });

    it("reports allocation at chunk granularity, merged, from any offset", async () => {
      const { open } = setup();
      const volume = await open();
      await volume.write(2 * CHUNK + 5, Buffer.from("x"));
      await volume.write(5 * CHUNK, seededBytes(CHUNK + 1, 5)); // chunks 5 and 6
      const expected = [
        { length: 2 * CHUNK - 100, hole: true, zero: true },
        { length: CHUNK, hole: false, zero: false },
        { length: 2 * CHUNK, hole: true, zero: true },
        { length: 2 * CHUNK, hole: false, zero: false },
        { length: 9 * CHUNK, hole: true, zero: true },
      ];
      expect(await volume.blockStatus(100, volume.size - 100)).toEqual(expected);
      await volume.flush();
      expect(await volume.blockStatus(100, volume.size - 100)).toEqual(expected);
      // Clipped to the request; covers at least one byte.
      expect(await volume.blockStatus(2 * CHUNK + 10, 10)).toEqual([{ length: 10, hole: false, zero: false }]);
      expect(await volume.blockStatus(3 * CHUNK, 0)).toEqual([{ length: 1, hole: true, zero: true }]);
      // A dirty trim is a hole before the flush commits it.
      await volume.trim(5 * CHUNK, CHUNK);
      expect(await volume.blockStatus(5 * CHUNK, 2 * CHUNK)).toEqual([
        { length: CHUNK, hole: true, zero: true },
        { length: CHUNK, hole: false, zero: false },
      ]);
      await volume.close();
    });

    it("keeps writes that land while a flush is uploading, and uploads a consistent copy", async () => {
      const { open, index, faulty, volumeId } = setup();
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
      const committedView = await Volume.open({ volumeId, size: volume.size, chunkSize: CHUNK, store, index });
      expect((await readAll(committedView, 0, CHUNK)).equals(first)).toBe(true);
      expect((await readAll(committedView, 3 * CHUNK, CHUNK)).equals(Buffer.alloc(CHUNK))).toBe(true);

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
      const sharedFlush = volume.flush(); // queued behind the running one: shares the second
      expect(sharedFlush).toBe(secondFlush);
      release();
      await Promise.all([firstFlush, secondFlush]);
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
      expect(volume.stats()).toMatchObject({ dirtyBytes: 0, epoch: 1, chunksStored: 4 });
      await volume.close();
      expect((await keysOf(volumeId)).length).toBe(4);
      const reopened = await open();
      expect((await readAll(reopened, CHUNK / 2, 3 * CHUNK)).equals(reference)).toBe(true);
      await reopened.close();
    });

    it("rejects flush with EIO when the commit fails, and the next flush commits everything", async () => {
      const { volumeId } = setup();
      const inner = new MemoryChunkIndex();
      let failCommits = 1;
      const index: ChunkIndex = {
        load: () => inner.load(),
        commit: (commit: ChunkCommit) => (failCommits-- > 0 ? Promise.reject(new Error("database unreachable")) : inner.commit(commit)),
      };
      const volume = await Volume.open({ volumeId, size: 8 * CHUNK, chunkSize: CHUNK, store, index });
      const data = seededBytes(2 * CHUNK, 52);
      await volume.write(0, data);
      const error = await volume.flush().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code: "EIO" });
      expect(volume.stats()).toMatchObject({ epoch: 0, dirtyBytes: 2 * CHUNK });
      await volume.flush();
      expect(volume.stats()).toMatchObject({ epoch: 1, dirtyBytes: 0 });
      expect((await keysOf(volumeId)).length).toBe(2);
      await volume.close();
      const reopened = await Volume.open({ volumeId, size: 8 * CHUNK, chunkSize: CHUNK, store, index: inner });
      expect((await readAll(reopened, 0, 2 * CHUNK)).equals(data)).toBe(true);
      await reopened.close();
    });

    it("treats a commit whose answer was lost but which landed as done", async () => {
      const { volumeId } = setup();
      const inner = new MemoryChunkIndex();
      let loseAnswers = 1;
      const index: ChunkIndex = {
        load: () => inner.load(),
        commit: async (commit: ChunkCommit) => {
          await inner.commit(commit);
          if (loseAnswers-- > 0) throw new Error("connection reset after commit");
        },
      };
      const volume = await Volume.open({ volumeId, size: 8 * CHUNK, chunkSize: CHUNK, store, index });
      const data = seededBytes(CHUNK, 54);
      await volume.write(CHUNK, data);
      await volume.flush();
      await volume.write(CHUNK, seededBytes(CHUNK, 55));
      await volume.flush(); // epoch 2 follows: the engine did not lose track of epoch 1
      expect(inner.snapshot().epoch).toBe(2);
      expect((await keysOf(volumeId)).map((key) => parseChunkKey(key)!.generation)).toEqual([2]);
      await volume.close();
    });

    it("fails reads of a chunk the store cannot return with EIO", async () => {
      const { open, faulty } = setup();
      const volume = await open();
      await volume.write(0, seededBytes(CHUNK, 53));
      await volume.close();
      const reopened = await open();
      faulty.failNext("get", 1);
      await expect(reopened.read(0, Buffer.alloc(10))).rejects.toMatchObject({ code: "EIO" });
      expect((await readAll(reopened, 0, CHUNK)).equals(seededBytes(CHUNK, 53))).toBe(true);
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

    it("shares one fetch between concurrent misses, and cache() prefetches", async () => {
      const { open, faulty } = setup();
      const volume = await open();
      const reference = seededBytes(4 * CHUNK, 61);
      await volume.write(0, reference);
      await volume.close();

      const reopened = await open();
      const before = faulty.calls.get;
      const targets = Array.from({ length: 10 }, () => Buffer.alloc(100));
      await Promise.all(targets.map((target, i) => reopened.read(i * 100, target)));
      expect(faulty.calls.get - before).toBe(1);
      targets.forEach((target, i) => expect(target.equals(reference.subarray(i * 100, i * 100 + 100))).toBe(true));

      await reopened.cache(CHUNK, 3 * CHUNK);
      const afterCache = faulty.calls.get;
      expect(afterCache - before).toBe(4);
      expect((await readAll(reopened, 0, 4 * CHUNK)).equals(reference)).toBe(true);
      expect(faulty.calls.get).toBe(afterCache);
      await reopened.close();
    });

    it("stays correct with a cache smaller than one chunk", async () => {
      const { open } = setup();
      const volume = await open({ cacheBytes: 1 });
      const reference = seededBytes(volume.size, 71);
      await volume.write(0, reference);
      await volume.flush();
      const patch = seededBytes(300, 72);
      await volume.write(CHUNK - 150, patch); // partial writes into chunks that must be fetched
      patch.copy(reference, CHUNK - 150);
      await volume.writeZeroes(3 * CHUNK + 7, 9);
      reference.fill(0, 3 * CHUNK + 7, 3 * CHUNK + 16);
      expect((await readAll(volume)).equals(reference)).toBe(true);
      await volume.flush();
      expect((await readAll(volume)).equals(reference)).toBe(true);
      expect(volume.stats().cachedBytes).toBe(0);
      await volume.close();
    });

    it("refuses bad ranges and operations after close", async () => {
      const { open } = setup();
      const volume = await open();
      await expect(volume.read(volume.size - 1, Buffer.alloc(2))).rejects.toMatchObject({ code: "EINVAL" });
      await expect(volume.read(-1, Buffer.alloc(1))).rejects.toMatchObject({ code: "EINVAL" });
      await expect(volume.write(volume.size, Buffer.alloc(1))).rejects.toMatchObject({ code: "ENOSPC" });
      await expect(volume.trim(volume.size - 1, 2)).rejects.toMatchObject({ code: "ENOSPC" });
      await volume.write(0, Buffer.from("last words"));
      await volume.close();
      await expect(volume.read(0, Buffer.alloc(1))).rejects.toMatchObject({ code: "ESHUTDOWN" });
      await expect(volume.write(0, Buffer.alloc(1))).rejects.toMatchObject({ code: "ESHUTDOWN" });
      await expect(volume.flush()).rejects.toMatchObject({ code: "ESHUTDOWN" });
      const reopened = await open();
      expect((await readAll(reopened, 0, 10)).toString()).toBe("last words");
      await reopened.close();
    });

    it("refuses an invalid geometry", async () => {
      const { volumeId, index } = setup();
      await expect(Volume.open({ volumeId, size: 1 << 20, chunkSize: 3000, store, index })).rejects.toMatchObject({ code: "EINVAL" });
      await expect(Volume.open({ volumeId, size: 0, chunkSize: CHUNK, store, index })).rejects.toMatchObject({ code: "EINVAL" });
    });

    it("deleteVolumeObjects removes every object of one volume and no other", async () => {
      const a = setup();
      const b = setup();
      for (const s of [a, b]) {
        const volume = await s.open();
        await volume.write(0, seededBytes(6 * CHUNK, 81));
        await volume.close();
      }
      expect(await deleteVolumeObjects(store, a.volumeId)).toBe(6);
      expect(await keysOf(a.volumeId)).toEqual([]);
      expect((await keysOf(b.volumeId)).length).toBe(6);
      expect(await deleteVolumeObjects(store, a.volumeId)).toBe(0);
    });
  });
}
