/** The Volume suite (volume-suite.ts): fetches, a cache smaller than a chunk, refused requests. */
import { beforeAll, expect, it } from "vitest";
import { writeFileFully, type FillWriter } from "../cache/fill-writer";
import type { ObjectStore } from "../object-store/object-store";
import { Volume } from "../volume/volume";
import { seededBytes } from "./seeded-random";
import { CHUNK, type VolumeSuiteFixture } from "./volume-suite-fixture";

export function describeFetchCases(f: VolumeSuiteFixture): void {
  const { setup, reopenedCold, readAll } = f;
  let store: ObjectStore;
  beforeAll(() => {
    store = f.store;
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
}
