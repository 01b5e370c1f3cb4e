/**
 * Model test: a long seeded random sequence of unaligned, cross-chunk writes, trims, zeroes,
 * flushes, clean reopens and crashes (the volume dropped without a flush), with every read
 * checked against a plain Buffer — as nbdkit's S3 plugin tests compare against a reference.
 * A crash must come back as exactly the state of the last flush; a clean reopen as everything.
 * On failure the message names the seed and step, so the run can be replayed.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DirectoryObjectStore } from "../object-store/directory-store";
import { MemoryObjectStore } from "../object-store/memory-store";
import type { ObjectStore } from "../object-store/object-store";
import type { ChunkIndex } from "../chunk-index";
import { FaultyObjectStore } from "../testing/faulty-object-store";
import { MemoryChunkIndex } from "../testing/memory-chunk-index";
import { seededBytes, seededRandom } from "../testing/seeded-random";
import { chunkPrefix, parseChunkKey } from "./chunk-layout";
import { Volume } from "./volume";

const KiB = 1024;
const SIZE = 4 * 1024 * KiB;
const CHUNK = 64 * KiB;

interface ModelRun {
  seed: number;
  steps: number;
  store: ObjectStore;
}

async function runModel({ seed, steps, store }: ModelRun): Promise<{ reads: number; commits: number; crashes: number }> {
  const random = seededRandom(seed);
  const pick = (n: number) => Math.floor(random() * n);
  const volumeId = `vol_model${seed}`;
  const index = new MemoryChunkIndex();
  // A small cache and dirty limit so eviction, refetch and backpressure are all exercised.
  // Each opened volume reaches the store and the index through its own switch, so a "crash"
  // can cut an abandoned volume off: its in-flight background flush then never commits, nor
  // touches objects the next volume writes — as if its process had died.
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
    const opened = Volume.open({
      volumeId,
      size: SIZE,
      chunkSize: CHUNK,
      store: faulty,
      index: gatedIndex,
      cacheBytes: 6 * CHUNK,
      dirtyLimitBytes: 12 * CHUNK,
      uploadConcurrency: 4,
    });
    const volume = await opened;
    return Object.assign(volume, { crash });
  };
  let volume = await open();
  let reference = Buffer.alloc(SIZE);
  // The bytes as of the last flush: what a crash must come back to. Unknown (undefined) after a
  // background flush may have committed more than that.
  let durable: Buffer | undefined = Buffer.alloc(SIZE);
  // The index's epoch at that flush: a background flush since (backpressure) may have committed
  // later writes, so a crash is simulated only while the epoch still matches.
  let durableEpoch = 0;
  let reads = 0;
  let crashes = 0;

  /** Ranges biased toward chunk edges and small sizes, sometimes large and cross-chunk. */
  const range = (): [number, number] => {
    const kind = pick(4);
    let offset: number;
    if (kind === 0) offset = pick(SIZE / CHUNK) * CHUNK + pick(3) - 1; // near a chunk boundary
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
      durable = undefined; // the flush covered some of these, and which is not ours to know
    } else if (roll < 88) {
      await check(step, offset, length);
    } else if (roll < 93) {
      await volume.flush();
      durable = Buffer.from(reference);
      durableEpoch = index.snapshot().epoch;
    } else if (roll < 96) {
      await volume.close();
      volume = await open();
      durable = Buffer.from(reference);
      durableEpoch = index.snapshot().epoch;
    } else if (durable !== undefined && index.snapshot().epoch === durableEpoch) {
      // Crash: abandon the volume with its dirty data; only the last flush survives.
      volume.crash();
      crashes++;
      volume = await open();
      reference = Buffer.from(durable);
    } else {
      await check(step, 0, SIZE);
    }
  }
  await check(steps, 0, SIZE);
  await volume.close();

  // The bucket holds exactly the committed chunks, one generation each, none all-zero.
  const { chunks } = index.snapshot();
  const keys: string[] = [];
  for (let startAfter: string | undefined; ; ) {
    const page = await store.list({ prefix: chunkPrefix(volumeId), startAfter });
    keys.push(...page.objects.map((o) => o.key));
    if (!page.truncated) break;
    startAfter = keys.at(-1);
  }
  const referenced = [...chunks].map(([i, ref]) => [i, ref.generation]).sort((a, b) => a[0]! - b[0]!);
  const listed = keys.map((key) => parseChunkKey(key)!).map((p) => [p.index, p.generation]);
  // A crash abandons a volume that may not have deleted everything it superseded: only
  // objects the index references must exist, and every referenced one must.
  for (const pair of referenced) expect(listed).toContainEqual(pair);
  for (const [i] of referenced) {
    expect(reference.subarray(i! * CHUNK, (i! + 1) * CHUNK).equals(Buffer.alloc(CHUNK))).toBe(false);
  }
  return { reads, commits: index.commits.length, crashes };
}

describe("Volume model test", () => {
  it("matches a plain buffer over 4,000 random steps (memory store)", async () => {
    const result = await runModel({ seed: 20261123, steps: 4000, store: new MemoryObjectStore() });
    expect(result.reads).toBeGreaterThan(1000);
    expect(result.commits).toBeGreaterThan(50);
    expect(result.crashes).toBeGreaterThan(10);
  });

  it("matches a plain buffer over 1,500 random steps (directory store)", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "stratus-model-"));
    try {
      const result = await runModel({ seed: 7, steps: 1500, store: new DirectoryObjectStore({ root }) });
      expect(result.reads).toBeGreaterThan(300);
      expect(result.crashes).toBeGreaterThan(3);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
