/**
 * WriteBehind's own rules with a recording host (the volume suite runs it against real stores):
 * which chunks become uploads ahead, when they go stale, when it pauses, and which epochs the
 * uploads ahead and the commits take.
 */
import { describe, expect, it } from "vitest";
import type { FrozenChunk } from "../cache/cache-entry";
import { GENERATIONS_PER_EPOCH } from "./chunk-layout";
import { STALE_LIMIT, WriteBehind, type UploadAhead } from "./write-behind";

const CHUNK = 1024 * 1024;
const SALT = 7;
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const epochOf = (generation: number) => Math.floor(generation / GENERATIONS_PER_EPOCH);

function setup(committedEpoch = 0, chunks = 64, concurrency = 4) {
  const started: UploadAhead[] = [];
  const writeBehind = new WriteBehind({
    volumeId: "vol",
    size: chunks * CHUNK,
    chunkSize: CHUNK,
    salt: SALT,
    committedEpoch,
    concurrency,
    enabled: true,
    host: {
      // Never settles: the tests decide what an upload read by setting `version`.
      upload: (record) => {
        started.push(record);
        return new Promise(() => {});
      },
      isDirtyData: () => true,
      accepting: () => true,
      failed: () => {},
    },
  });
  /** Writes [from, to) in 256 KiB pieces, in order. */
  const writeRun = (from: number, to: number) => {
    for (let offset = from; offset < to; offset += CHUNK / 4) writeBehind.noteWrite(offset, Math.min(offset + CHUNK / 4, to));
  };
  const frozen = (index: number, version: number, hole = false) => [index, { index, version, hole } as FrozenChunk] as const;
  return { writeBehind, started, writeRun, frozen };
}

describe("WriteBehind", () => {
  it("uploads only chunks written whole since the last freeze, in whatever order their pieces came", async () => {
    const { writeBehind, started, writeRun } = setup();
    writeRun(0, 2 * CHUNK); // chunks 0 and 1, whole
    writeBehind.noteWrite(5 * CHUNK + 4096, 6 * CHUNK); // reaches chunk 5's end, but began inside it
    writeRun(8 * CHUNK + CHUNK / 2, 10 * CHUNK); // chunk 8 from its middle: only 9 is whole
    writeBehind.noteWrite(20 * CHUNK, 20 * CHUNK + 4096); // a 4k write
    // Chunk 12 in four pieces from interleaved connections: the last piece first.
    for (const piece of [3, 0, 2, 1]) writeBehind.noteWrite(12 * CHUNK + (piece * CHUNK) / 4, 12 * CHUNK + ((piece + 1) * CHUNK) / 4);
    await nextTurn();
    expect(started.map((record) => record.index).sort((a, b) => a - b)).toEqual([0, 1, 9, 12]);
    // All at the first epoch after the committed one, under this writer's salt.
    expect(new Set(started.map((record) => record.generation))).toEqual(new Set([1 * GENERATIONS_PER_EPOCH + SALT]));
  });

  it("starts counting afresh at a freeze: half a chunk before it and half after is not a whole chunk", async () => {
    const { writeBehind, started } = setup();
    writeBehind.noteWrite(30 * CHUNK, 30 * CHUNK + CHUNK / 2);
    writeBehind.takeForCommit(0, new Map()); // the commit uploads chunk 30 as it is
    writeBehind.noteWrite(30 * CHUNK + CHUNK / 2, 31 * CHUNK);
    await nextTurn();
    expect(started).toEqual([]);
    writeBehind.noteWrite(30 * CHUNK, 30 * CHUNK + CHUNK / 2);
    await nextTurn();
    expect(started.map((record) => record.index)).toEqual([30]);
  });

  it("keeps at most `concurrency` uploads ahead running; the rest wait as candidates", async () => {
    const { writeBehind, started, writeRun } = setup();
    writeRun(0, 10 * CHUNK);
    await nextTurn();
    expect(started).toHaveLength(4);
    expect(writeBehind.running).toBe(4);
  });

  it("hands uploads ahead to the commit: claimed when they hold the frozen content, stale when written over", async () => {
    const { writeBehind, started, writeRun, frozen } = setup(5);
    writeRun(0, 3 * CHUNK);
    await nextTurn();
    const [zero, one] = started; // started[2] has not read yet: it will upload the frozen content
    zero!.version = 10; // read at version 10, unchanged since
    one!.version = 11; // read at 11, then written again (12)
    writeBehind.noteWrite(CHUNK + 4096, CHUNK + 8192);
    const handOver = writeBehind.takeForCommit(5, new Map([frozen(0, 10), frozen(1, 12), frozen(2, 13)]));
    expect([...handOver.claimed.keys()].sort()).toEqual([0, 2]);
    expect(handOver.claimed.get(2)!.frozen).toMatchObject({ index: 2, version: 13 });
    expect(handOver.stale.map((record) => record.index)).toEqual([1]);
    // Chunk 1 needs a fresh upload and already has an object at the ahead epoch (6): the commit takes 7.
    expect(epochOf(zero!.generation)).toBe(6);
    expect(handOver.epoch).toBe(7);
  });

  it("commits at the uploads' own epoch when every chunk it uploads itself has no object there", async () => {
    const { writeBehind, started, writeRun, frozen } = setup(5);
    writeRun(0, 2 * CHUNK);
    await nextTurn();
    for (const record of started) record.version = 1;
    // Chunk 3 was written too (not in order): the commit uploads it, and it has nothing at epoch 6.
    const handOver = writeBehind.takeForCommit(5, new Map([frozen(0, 1), frozen(1, 1), frozen(3, 2)]));
    expect(handOver.epoch).toBe(6);
    expect(handOver.claimed.size).toBe(2);
    // Uploads ahead after the freeze are named above the commit's epoch.
    writeRun(4 * CHUNK, 5 * CHUNK);
    await nextTurn();
    expect(epochOf(started.at(-1)!.generation)).toBe(7);
  });

  it("gives a chunk's second upload ahead a new epoch: a key is never written twice", async () => {
    const { started, writeRun } = setup();
    writeRun(0, CHUNK);
    await nextTurn();
    started[0]!.version = 1;
    writeRun(0, CHUNK); // written again, in order: stale, and a candidate again
    await nextTurn();
    expect(started.map((record) => record.index)).toEqual([0, 0]);
    expect(started.map((record) => epochOf(record.generation))).toEqual([1, 2]);
  });

  it(`pauses after ${STALE_LIMIT} uploads ahead were written over, until the next commit`, async () => {
    const { writeBehind, started, writeRun, frozen } = setup(0, 64, 64);
    for (let round = 0; round < STALE_LIMIT; round++) {
      writeRun(round * CHUNK, (round + 1) * CHUNK);
      await nextTurn();
      started.at(-1)!.version = round;
      writeBehind.noteWrite(round * CHUNK, round * CHUNK + 512); // written over after it read
    }
    expect(writeBehind.paused).toBe(true);
    const before = started.length;
    writeRun(32 * CHUNK, 40 * CHUNK);
    await nextTurn();
    expect(started.length).toBe(before);
    const handOver = writeBehind.takeForCommit(0, new Map([frozen(0, 99)]));
    expect(handOver.stale).toHaveLength(STALE_LIMIT);
    expect(writeBehind.paused).toBe(false);
    writeRun(48 * CHUNK, 49 * CHUNK);
    await nextTurn();
    expect(started.length).toBe(before + 1);
  });

  it("returns a commit's epoch when that commit stored and named nothing", () => {
    const { writeBehind, frozen } = setup(3);
    const first = writeBehind.takeForCommit(3, new Map([frozen(0, 1)]));
    expect(first.epoch).toBe(4);
    writeBehind.returnEpoch(4);
    expect(writeBehind.takeForCommit(3, new Map([frozen(0, 2)])).epoch).toBe(4);
  });

  it("does nothing when disabled, but still numbers commits", async () => {
    const started: UploadAhead[] = [];
    const writeBehind = new WriteBehind({
      volumeId: "vol",
      size: 8 * CHUNK,
      chunkSize: CHUNK,
      salt: 0,
      committedEpoch: 2,
      concurrency: 4,
      enabled: false,
      host: { upload: (record) => (started.push(record), new Promise(() => {})), isDirtyData: () => true, accepting: () => true, failed: () => {} },
    });
    for (let offset = 0; offset < 4 * CHUNK; offset += CHUNK) writeBehind.noteWrite(offset, offset + CHUNK);
    await nextTurn();
    expect(started).toEqual([]);
    expect(writeBehind.takeForCommit(2, new Map()).epoch).toBe(3);
  });
});
