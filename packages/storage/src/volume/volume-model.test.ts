/**
 * Model test: a long seeded random sequence of unaligned, cross-chunk writes, trims, zeroes,
 * flushes, commits, clean reopens and two kinds of crash, with every read checked against a
 * plain Buffer — as nbdkit's S3 plugin tests compare against a reference.
 * - kill -9 (abandon, reopen from the same cache directory and index): every acknowledged
 *   write reads back (the cache files and journal survive a process crash).
 * - machine lost (abandon, delete the cache directory, reopen from the bucket alone): the volume
 *   equals the state at some flush at or after the last commit (the model records them).
 * On failure the message names the seed and step, so the run can be replayed.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { CacheBudget } from "../cache/cache-budget";
import { DirectoryObjectStore } from "../object-store/directory-store";
import { MemoryObjectStore } from "../object-store/memory-store";
import type { ObjectStore } from "../object-store/object-store";
import type { ChunkIndex } from "../chunk-index";
import { FaultyObjectStore } from "../testing/faulty-object-store";
import { MemoryChunkIndex } from "../testing/memory-chunk-index";
import { seededBytes, seededRandom } from "../testing/seeded-random";
import { chunkPrefix, parseChunkKey } from "./chunk-layout";
import { Volume, type Durability } from "./volume";

const KiB = 1024;
const SIZE = 4 * 1024 * KiB;
const CHUNK = 64 * KiB;

interface ModelRun {
  seed: number;
  steps: number;
  store: ObjectStore;
  durability: Durability;
}

interface ModelResult {
  reads: number;
  commits: number;
  crashes: number;
  machineLosses: number;
}

async function runModel({ seed, steps, store, durability }: ModelRun): Promise<ModelResult> {
  const random = seededRandom(seed);
  const pick = (n: number) => Math.floor(random() * n);
  const volumeId = `vol_model${seed}`;
  const index = new MemoryChunkIndex();
  const cacheDir = await mkdtemp(path.join(tmpdir(), "stratus-model-cache-"));
  // A small cache target so eviction and refetch are exercised; a dirty limit above the volume
  // size and no interval commits, so every commit happens at a step the model knows.
  const budget = new CacheBudget({ targetBytes: 6 * CHUNK, dirtyLimitBytes: 2 * SIZE, maxOpenFiles: 8 });
  // Each opened volume reaches the store and the index through its own switch, so a crash
  // cuts an abandoned volume off: its in-flight work never commits, nor touches objects the
  // next volume writes — as if its process had died.
  const open = async () => {
    const life = { value: true };
    const faulty = new FaultyObjectStore(store);
    const gatedIndex: ChunkIndex = {
      load: () => index.load(),
      commit: (commit) => (life.value ? index.commit(commit) : Promise.reject(new Error("crashed"))),
    };
    const crash = () => {
      life.value = false;
      for (const operation of ["put", "get", "head", "deleteMany", "list"] as const) faulty.fail(operation);
      volume.abandon();
    };
    const volume = await Volume.open({
      volumeId,
      size: SIZE,
      chunkSize: CHUNK,
      store: faulty,
      index: gatedIndex,
      cacheDir,
      cacheBudget: budget,
      durability,
      commitIntervalMs: 3_600_000,
      uploadConcurrency: 4,
      readAheadChunks: 2,
    });
    return Object.assign(volume, { crash });
  };
  let volume = await open();
  const reference = Buffer.alloc(SIZE);
  // What the bucket may hold: the states at the flushes at or after the last commit's freeze.
  // Undefined when unknown (a commit froze in the middle of concurrent operations).
  let cloudStates: Buffer[] | undefined = [Buffer.alloc(SIZE)];
  let reads = 0;
  let crashes = 0;
  let machineLosses = 0;

  /** Ranges biased toward chunk edges and small sizes, sometimes large and cross-chunk. */
  const range = (): [number, number] => {
    const kind = pick(4);
    let offset: number;
    if (kind === 0)
      offset = pick(SIZE / CHUNK) * CHUNK + pick(3) - 1; // near a chunk boundary
    else offset = pick(SIZE);
    offset = Math.max(0, Math.min(SIZE - 1, offset));
    const maxLength = [512, 4 * KiB, 3 * CHUNK, 10 * CHUNK][pick(4)]!;
    const length = 1 + pick(Math.min(maxLength, SIZE - offset));
    return [offset, length];
  };

  const check = async (step: number, offset: number, length: number) => {
    const target = Buffer.alloc(length, 0xa5);
    await volume.read(offset, target);
    reads++;
    if (!target.equals(reference.subarray(offset, offset + length))) {
      let first = 0;
      while (target[first] === reference[offset + first]) first++;
      throw new Error(`seed ${seed} step ${step}: read ${offset}+${length} differs first at byte ${offset + first}`);
    }
  };

  for (let step = 0; step < steps; step++) {
    const roll = pick(100);
    const [offset, length] = range();
    if (roll < 35) {
      const data = pick(8) === 0 ? Buffer.alloc(length) : seededBytes(length, seed * 1_000_003 + step);
      await volume.write(offset, data);
      data.copy(reference, offset);
    } else if (roll < 45) {
      await volume.trim(offset, length);
      reference.fill(0, offset, offset + length);
    } else if (roll < 52) {
      await volume.writeZeroes(offset, length, { noHole: pick(2) === 0 });
      reference.fill(0, offset, offset + length);
    } else if (roll < 55) {
      // Several non-overlapping operations at once, a flush among them.
      const base = pick(SIZE - 8 * CHUNK);
      const operations: Promise<void>[] = [];
      for (let k = 0; k < 4; k++) {
        const start = base + k * 2 * CHUNK + pick(CHUNK);
        const len = 1 + pick(CHUNK); // stays inside its own two-chunk slot: no overlaps
        if (pick(3) === 0) {
          operations.push(volume.trim(start, len));
          reference.fill(0, start, start + len);
        } else {
          const data = seededBytes(len, seed * 7919 + step * 4 + k);
          operations.push(volume.write(start, data));
          data.copy(reference, start);
        }
        if (k === 1) operations.push(volume.flush());
      }
      await Promise.all(operations);
      // A cloud flush committed some of these, and which is not ours to know.
      if (durability === "cloud") cloudStates = undefined;
    } else if (roll < 85) {
      await check(step, offset, length);
    } else if (roll < 90) {
      await volume.flush();
      if (durability === "cloud") cloudStates = [Buffer.from(reference)];
    } else if (roll < 92) {
      await volume.commit();
      cloudStates = [Buffer.from(reference)];
    } else if (roll < 94) {
      await volume.close();
      volume = await open();
      cloudStates = [Buffer.from(reference)];
    } else if (roll < 98) {
      // kill -9: the cache directory survives; every acknowledged write must read back.
      volume.crash();
      crashes++;
      volume = await open();
      await check(step, 0, SIZE);
      // The replayed dirty chunks are committed at once; wait for that to know the bucket.
      await volume.commit();
      cloudStates = [Buffer.from(reference)];
    } else if (cloudStates !== undefined) {
      // The machine is lost: only the bucket and the index remain.
      volume.crash();
      machineLosses++;
      await rm(cacheDir, { recursive: true, force: true });
      volume = await open();
      const image = Buffer.alloc(SIZE);
      await volume.read(0, image);
      const match = cloudStates.find((state) => state.equals(image));
      if (match === undefined) throw new Error(`seed ${seed} step ${step}: after losing the cache the volume equals no flush state since the last commit`);
      match.copy(reference);
      cloudStates = [Buffer.from(reference)];
    } else {
      await check(step, 0, SIZE);
    }
  }
  await check(steps, 0, SIZE);
  await volume.close();
  // What stays on disk is a clean dormant cache the budget still counts, within its target.
  expect(budget.cachedBytes).toBeLessThanOrEqual(budget.targetBytes);
  expect(budget.pinnedDormant).toEqual([]);
  expect(budget.openFileCount).toBe(0);
  await rm(cacheDir, { recursive: true, force: true });

  // Every chunk the index references exists and is not all-zero; the GC's garbage never
  // names a current generation.
  const { chunks } = index.snapshot();
  const keys: string[] = [];
  for (let startAfter: string | undefined; ;) {
    const page = await store.list({ prefix: chunkPrefix(volumeId), startAfter });
    keys.push(...page.objects.map((o) => o.key));
    if (!page.truncated) break;
    startAfter = keys.at(-1);
  }
  const listed = new Set(keys.map((key) => parseChunkKey(key)!).map((p) => `${p.index}/${p.generation}`));
  for (const [i, ref] of chunks) {
    expect(listed.has(`${i}/${ref.generation}`)).toBe(true);
    expect(reference.subarray(i * CHUNK, (i + 1) * CHUNK).equals(Buffer.alloc(CHUNK))).toBe(false);
  }
  for (const [i, generation] of index.garbage) expect(chunks.get(i)?.generation).not.toBe(generation);
  return { reads, commits: index.commits.length, crashes, machineLosses };
}

describe("Volume model test", () => {
  it("matches a plain buffer over 3,000 random steps (memory store, durability local)", async () => {
    const result = await runModel({ seed: 20261123, steps: 3000, store: new MemoryObjectStore(), durability: "local" });
    expect(result.reads).toBeGreaterThan(800);
    expect(result.commits).toBeGreaterThan(50);
    expect(result.crashes).toBeGreaterThan(20);
    expect(result.machineLosses).toBeGreaterThan(10);
  });

  it("matches a plain buffer over 1,500 random steps (directory store, durability cloud)", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "stratus-model-"));
    try {
      const result = await runModel({ seed: 7, steps: 1500, store: new DirectoryObjectStore({ root }), durability: "cloud" });
      expect(result.reads).toBeGreaterThan(300);
      expect(result.crashes).toBeGreaterThan(10);
      expect(result.machineLosses).toBeGreaterThan(3);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
