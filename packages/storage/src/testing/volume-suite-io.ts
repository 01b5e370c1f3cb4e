/** The Volume suite (volume-suite.ts): reads, writes, trims and allocation. */
import { expect, it } from "vitest";
import { chunkPrefix, parseChunkKey } from "../volume/chunk-layout";
import { seededBytes } from "./seeded-random";
import { CHUNK, KiB, type VolumeSuiteFixture } from "./volume-suite-fixture";

export function describeIoCases(f: VolumeSuiteFixture): void {
  const { setup, keysOf, readAll } = f;

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
}
