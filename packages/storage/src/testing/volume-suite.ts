/**
 * The one Volume test suite, run over every object store (memory, directory, S3) with an
 * in-memory ChunkIndex and a disk cache in a temp directory. Each test uses its own volume id,
 * so one store and one cache root serve the whole file. Volumes default to durability "cloud"
 * here (FLUSH commits), so tests see the store after a flush; "local" cases say so.
 * One long file on purpose: every store must pass exactly the same cases.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheBudget } from "../cache/cache-budget";
import { writeFileFully, type FillWriter } from "../cache/fill-writer";
import type { ChunkCommit, ChunkIndex } from "../chunk-index";
import { StorageError } from "../errors";
import type { ObjectStore } from "../object-store/object-store";
import { ChunkBuffers } from "../volume/chunk-buffers";
import { chunkPrefix, parseChunkKey, volumePrefix } from "../volume/chunk-layout";
import { deleteVolumeObjects } from "../volume/delete-volume-objects";
import { Volume, type ChunkUploader, type CommittedMap, type UploadTask, type VolumeOptions } from "../volume/volume";
import { FaultyObjectStore } from "./faulty-object-store";
import { ManualClock } from "./manual-clock";
import { MemoryChunkIndex } from "./memory-chunk-index";
import { seededBytes } from "./seeded-random";
import { waitFor } from "./wait-for";

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
    let cacheRoot: string;
    let cacheDirs = 0;

    beforeAll(async () => {
      store = await factory.create();
      cacheRoot = await mkdtemp(path.join(tmpdir(), "stratus-cache-suite-"));
    });

    afterAll(async () => {
      await store?.close();
      await factory.cleanup?.();
      if (cacheRoot) await rm(cacheRoot, { recursive: true, force: true });
    });

    // One set of buffer pools for every volume of the file, as a gateway shares one, in debug mode:
    // a released buffer is poisoned, and a double release or a write after release throws.
    const buffers = new ChunkBuffers({ debug: true });

    interface Setup {
      volumeId: string;
      index: MemoryChunkIndex;
      faulty: FaultyObjectStore;
      /** The cache root every open() uses unless `cacheDir` is overridden. */
      cacheDir: string;
      open(overrides?: Partial<VolumeOptions>): Promise<Volume>;
      /** A new, empty cache root: a reopen with it sees only the bucket (the machine was lost). */
      freshCacheDir(): string;
    }

    function freshCacheDir(): string {
      return path.join(cacheRoot, `c${++cacheDirs}`);
    }

    function setup(size = 16 * CHUNK): Setup {
      const volumeId = `vol_${name.replace(/\W/g, "")}${++volumeCount}`;
      const index = new MemoryChunkIndex();
      const faulty = new FaultyObjectStore(store);
      const cacheDir = freshCacheDir();
      return {
        volumeId,
        index,
        faulty,
        cacheDir,
        freshCacheDir,
        open: (overrides) => Volume.open({ volumeId, size, chunkSize: CHUNK, store: faulty, index, cacheDir, durability: "cloud", buffers, ...overrides }),
      };
    }

    /**
     * Writes seeded bytes (`length`, default the whole volume), closes, and reopens with an empty
     * cache (with `overrides`): every read of the reopened volume starts as a download.
     */
    async function reopenedCold(s: Setup, seed: number, overrides: Partial<VolumeOptions>, length?: number): Promise<{ reopened: Volume; reference: Buffer }> {
      const volume = await s.open();
      const reference = seededBytes(length ?? volume.size, seed);
      await volume.write(0, reference);
      await volume.close();
      return { reopened: await s.open({ cacheDir: s.freshCacheDir(), ...overrides }), reference };
    }

    /**
     * Each chunk reads back from the cache synchronously (readNow never asks the store). Such a read
     * may continue a sequential reader and start read-ahead of its own: request counts would see it.
     */
    function expectCached(volume: Volume, chunks: number[], reference: Buffer): void {
      for (const chunk of chunks) {
        const target = Buffer.alloc(CHUNK);
        expect(volume.readNow(chunk * CHUNK, target), `chunk ${chunk} cached`).toBe(true);
        expect(target.equals(reference.subarray(chunk * CHUNK, (chunk + 1) * CHUNK))).toBe(true);
      }
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
      const { open, volumeId, faulty, index } = setup();
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
      // The chunk left the map; its object is garbage for the GC, not deleted by the volume.
      expect(index.snapshot().chunks.size).toBe(0);
      expect(index.garbage).toEqual([[1, 65_536]]);
      expect(faulty.calls.put).toBe(1);
      expect((await readAll(volume)).equals(Buffer.alloc(volume.size))).toBe(true);
      expect(volume.stats()).toMatchObject({ chunksStored: 0, storedBytes: 0 });
      await volume.close();
    });

    it("keeps object keys in chunk order, a new generation per commit, superseded ones recorded as garbage", async () => {
      const { open, volumeId, index } = setup();
      const volume = await open({ generationSalt: 7 });
      for (const chunk of [9, 3, 15, 0, 7]) await volume.write(chunk * CHUNK + 5, seededBytes(10, chunk));
      await volume.flush();
      for (const chunk of [3, 15, 1]) await volume.write(chunk * CHUNK, seededBytes(CHUNK, chunk + 100));
      await volume.flush();
      const keys = await keysOf(volumeId);
      expect(keys.every((key) => key.startsWith(chunkPrefix(volumeId)))).toBe(true);
      const parts = keys.map((key) => parseChunkKey(key)!);
      const g1 = 65_536 + 7;
      const g2 = 2 * 65_536 + 7;
      expect(parts.map((p) => [p.index, p.generation])).toEqual([
        [0, g1],
        [1, g2],
        [3, g1],
        [3, g2],
        [7, g1],
        [9, g1],
        [15, g1],
        [15, g2],
      ]);
      expect([...index.snapshot().chunks].map(([i, ref]) => [i, ref.generation]).sort((a, b) => a[0]! - b[0]!)).toEqual([
        [0, g1],
        [1, g2],
        [3, g2],
        [7, g1],
        [9, g1],
        [15, g2],
      ]);
      expect(index.commits[1]!.garbage).toEqual([
        [3, g1],
        [15, g1],
      ]);
      await volume.close();
    });

    it("trims and zeroes whole chunks to holes and partial chunks to zeros", async () => {
      const { open, volumeId, index, freshCacheDir } = setup();
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
      const stored = [...index.snapshot().chunks.keys()];
      expect(stored).not.toContain(1);
      expect(stored).not.toContain(2);
      expect(stored).not.toContain(8);
      expect(stored).not.toContain(9);
      expect(stored).toContain(0);
      expect(stored).toContain(4);
      await volume.close();

      for (const cacheDir of [undefined, freshCacheDir()]) {
        const reopened = await open(cacheDir ? { cacheDir } : {});
        expect((await readAll(reopened)).equals(reference)).toBe(true);
        await reopened.close();
      }
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
      const suite = setup();
      const { faulty } = suite;
      const { reopened, reference } = await reopenedCold(suite, 61, { readAheadChunks: 0 }, 4 * CHUNK);
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

    it("keeps a fetched chunk's bytes for its readers until its cache file is written, while other fetches reuse memory", async () => {
      const suite = setup();
      const { faulty } = suite;

      // Fills wait until released: chunk 0 is served from its fetched bytes meanwhile.
      const held: Array<() => Promise<void>> = [];
      let holding = true;
      const fillWriter: FillWriter = (fd, data) =>
        holding ? new Promise<void>((resolve, reject) => held.push(() => writeFileFully(fd, data).then(resolve, reject))) : writeFileFully(fd, data);
      const { reopened, reference } = await reopenedCold(suite, 67, { readAheadChunks: 0, fillWriter }, 4 * CHUNK);
      const first = Buffer.alloc(CHUNK);
      await reopened.read(0, first);
      expect(first.equals(reference.subarray(0, CHUNK))).toBe(true);
      for (let index = 1; index < 4; index++) {
        await reopened.read(index * CHUNK, Buffer.alloc(CHUNK));
        await new Promise<void>((resolve) => setImmediate(resolve)); // past any recycling of plain reads
      }
      const gets = faulty.calls.get;
      const again = Buffer.alloc(CHUNK);
      await reopened.read(0, again);
      expect(faulty.calls.get).toBe(gets); // from the fill in flight, not a new download
      expect(again.equals(reference.subarray(0, CHUNK))).toBe(true);

      holding = false;
      while (held.length > 0) await held.shift()!();
      expect((await readAll(reopened, 0, 4 * CHUNK)).equals(reference)).toBe(true);
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

    it("reads ahead for sequential readers", async () => {
      const { reopened, reference } = await reopenedCold(setup(), 97, { readAheadChunks: 4 });
      for (let offset = 0; offset < 2 * CHUNK; offset += 16 * KiB) {
        expect((await readAll(reopened, offset, 16 * KiB)).equals(reference.subarray(offset, offset + 16 * KiB))).toBe(true);
      }
      // Chunks 2..5 were fetched ahead: they are served from the cache, synchronously, with no request.
      await waitFor(() => reopened.stats().cachedBytes >= 6 * CHUNK, "read-ahead");
      expectCached(reopened, [5, 4, 3, 2], reference);
      await reopened.close();
    });

    it("warms ahead for a sequential reader of cold cached chunks (after a restart), with no request", async () => {
      const s = setup();
      const volume = await s.open();
      const reference = seededBytes(volume.size, 96);
      await volume.write(0, reference);
      await volume.close();
      const reopened = await s.open({ readAheadChunks: 4 });
      for (let offset = 0; offset < 2 * CHUNK; offset += 16 * KiB) {
        expect((await readAll(reopened, offset, 16 * KiB)).equals(reference.subarray(offset, offset + 16 * KiB))).toBe(true);
      }
      // Chunks 2..5 were warmed ahead: served synchronously now, never read by the client before.
      // Up to four warm-ups run at once and finish in any order: wait for all of them.
      const probe = Buffer.alloc(4096);
      await waitFor(() => [2, 3, 4, 5].every((index) => reopened.readNow(index * CHUNK, probe)), "warm-ahead");
      for (const index of [2, 3, 4, 5]) {
        expect(reopened.readNow(index * CHUNK, probe)).toBe(true);
        expect(probe.equals(reference.subarray(index * CHUNK, index * CHUNK + 4096))).toBe(true);
      }
      expect(reopened.readNow(7 * CHUNK, probe)).toBe(false); // past the window: still cold
      expect(s.faulty.calls.get).toBe(0);
      await reopened.close();
    });

    it("reads ahead for each of two interleaved sequential readers", async () => {
      const { reopened, reference } = await reopenedCold(setup(), 98, { readAheadChunks: 2 });
      // Two copies' connections, or two programs: reads alternate between chunk 0 and chunk 8 on.
      for (let offset = 0; offset < CHUNK; offset += 16 * KiB) {
        for (const start of [0, 8 * CHUNK]) {
          const at = start + offset;
          expect((await readAll(reopened, at, 16 * KiB)).equals(reference.subarray(at, at + 16 * KiB))).toBe(true);
        }
      }
      await waitFor(() => reopened.stats().cachedBytes >= 6 * CHUNK, "read-ahead of both readers");
      expectCached(reopened, [10, 9, 2, 1], reference);
      await reopened.close();
    });

    it("keeps read-ahead within the download concurrency, and goes on as downloads finish", async () => {
      const suite = setup();
      const { faulty } = suite;
      const { reopened, reference } = await reopenedCold(suite, 99, { readAheadChunks: 8, uploadConcurrency: 3 });
      const release = faulty.hold("get");
      const targets = [0, 1, 2].map(() => Buffer.alloc(16 * KiB));
      const reads = targets.map((target, i) => reopened.read(i * 16 * KiB, target)); // sequential: read-ahead starts
      expect(faulty.heldCount("get")).toBe(3); // chunk 0 for the readers, then 2 ahead: not 9
      release();
      await Promise.all(reads);
      targets.forEach((target, i) => expect(target.equals(reference.subarray(i * 16 * KiB, (i + 1) * 16 * KiB))).toBe(true));
      // As the reader goes on, each of its reads tops read-ahead up again within the limit.
      for (let offset = 3 * 16 * KiB; offset < 6 * CHUNK; offset += 16 * KiB) {
        expect((await readAll(reopened, offset, 16 * KiB)).equals(reference.subarray(offset, offset + 16 * KiB))).toBe(true);
      }
      // Read-ahead's downloads finish in any order: wait for chunks 6 and 7 themselves, not for any 8 chunks.
      const probe = Buffer.alloc(CHUNK);
      await waitFor(() => reopened.stats().cachedBytes >= 8 * CHUNK && reopened.readNow(6 * CHUNK, probe) && reopened.readNow(7 * CHUNK, probe), "read-ahead past where the reader stopped");
      expectCached(reopened, [7, 6], reference);
      await reopened.close();
    });

    it("reads back data 4x larger than a shared cache, staying within target + one dirty limit", async () => {
      const { open } = setup(32 * CHUNK);
      const budget = new CacheBudget({ targetBytes: 8 * CHUNK, dirtyLimitBytes: 4 * CHUNK });
      const bound = budget.targetBytes + budget.dirtyLimitBytes + CHUNK; // + one admitted write
      let peak = 0;
      const volume = await open({ cacheBudget: budget, durability: "local", commitIntervalMs: 3_600_000 });
      const reference = seededBytes(volume.size, 98);
      for (let offset = 0; offset < volume.size; offset += CHUNK / 2) {
        await volume.write(offset, reference.subarray(offset, offset + CHUNK / 2));
        peak = Math.max(peak, budget.cachedBytes);
      }
      await volume.flush();
      for (let offset = 0; offset < volume.size; offset += 3 * CHUNK) {
        const length = Math.min(3 * CHUNK, volume.size - offset);
        expect((await readAll(volume, offset, length)).equals(reference.subarray(offset, offset + length))).toBe(true);
        peak = Math.max(peak, budget.cachedBytes);
      }
      expect(peak).toBeLessThanOrEqual(bound);
      await volume.close();
      // Closed, its clean files stay as a dormant cache: still counted, within the target, not pinned.
      expect(budget.cachedBytes).toBeGreaterThan(0);
      expect(budget.cachedBytes).toBeLessThanOrEqual(budget.targetBytes);
      expect(budget.pinnedDormant).toEqual([]);
      expect(budget.openFileCount).toBe(0);
    });

    it("holds writes (never fails them) while the store stalls, and drains when it recovers", async () => {
      const { open, faulty, freshCacheDir } = setup();
      const volume = await open({ durability: "local", dirtyLimitBytes: 2 * CHUNK, commitIntervalMs: 3_600_000 });
      const release = faulty.hold("put");
      const reference = seededBytes(volume.size, 99);
      const settled: Array<"ok" | "failed"> = [];
      const writes = Array.from({ length: 16 }, (_, chunk) =>
        volume.write(chunk * CHUNK, reference.subarray(chunk * CHUNK, (chunk + 1) * CHUNK)).then(
          () => void settled.push("ok"),
          () => void settled.push("failed"),
        ),
      );
      await waitFor(() => faulty.heldCount("put") > 0, "uploads to stall");
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(settled.length).toBeLessThan(16); // some wait for room
      expect(settled).not.toContain("failed");
      release();
      await Promise.all(writes);
      expect(settled.every((s) => s === "ok")).toBe(true);
      await volume.close();
      const reopened = await open({ cacheDir: freshCacheDir() });
      expect((await readAll(reopened)).equals(reference)).toBe(true);
      await reopened.close();
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
