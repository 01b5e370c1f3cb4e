import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SealedCodec } from "../codec/sealed-codec";
import { MemoryObjectStore } from "../object-store/memory-store";
import { seededRandom } from "../testing/seeded-random";
import { decodeManifestBody, encodeManifestBody, listManifestEpochs, manifestKey, readLatestManifest, writeManifest, type ManifestChunk } from "./manifest";

const codec = new SealedCodec({ dataKey: randomBytes(32) });
const volumeId = "vol_m";

function randomMap(count: number, seed: number): Map<number, ManifestChunk> {
  const random = seededRandom(seed);
  const chunks = new Map<number, ManifestChunk>();
  while (chunks.size < count) {
    chunks.set(Math.floor(random() * 1_000_000), { generation: Math.floor(random() * 2 ** 40), storedSize: Math.floor(random() * 2 ** 22) });
  }
  return chunks;
}

describe("manifest body", () => {
  it("round-trips maps of any size, including numbers up to 2^53-1", () => {
    const edge = new Map<number, ManifestChunk>([
      [0, { generation: 0, storedSize: 0 }],
      [Number.MAX_SAFE_INTEGER - 1, { generation: Number.MAX_SAFE_INTEGER, storedSize: 127 }],
      [128, { generation: 128, storedSize: 2 ** 32 }],
    ]);
    for (const chunks of [new Map<number, ManifestChunk>(), edge, randomMap(10_000, 1)]) {
      const decoded = decodeManifestBody(encodeManifestBody(9, chunks));
      expect(decoded.epoch).toBe(9);
      expect(new Map([...decoded.chunks].sort((a, b) => a[0] - b[0]))).toEqual(new Map([...chunks].sort((a, b) => a[0] - b[0])));
    }
  });

  it("is compact: a dense 262144-chunk map seals to well under 2 MiB", () => {
    const chunks = new Map<number, ManifestChunk>();
    for (let index = 0; index < 262_144; index++) chunks.set(index, { generation: 5 * 65_536 + 3, storedSize: 1_048_596 });
    const sealed = codec.encodeManifest(encodeManifestBody(5, chunks), { volumeId, epoch: 5 });
    expect(sealed.length).toBeLessThan(64 * 1024);
  });

  it("refuses truncated, padded or inconsistent bodies with EIO", () => {
    const body = encodeManifestBody(3, randomMap(100, 2));
    expect(() => decodeManifestBody(body.subarray(0, body.length - 1))).toThrow(/truncated/);
    expect(() => decodeManifestBody(Buffer.concat([body, Buffer.from([0])]))).toThrow(/trailing/);
    expect(() => decodeManifestBody(Buffer.from([3, 0, 0]))).toThrow(/version 3/);
    expect(() => decodeManifestBody(Buffer.from([1, 0, 0x80, 0x80, 0x80, 0x01]))).toThrow(/claims/);
    expect(() => encodeManifestBody(-1, new Map())).toThrow(/epoch/);
  });
});

describe("manifests in the bucket", () => {
  it("reads back the newest epoch and keeps only the newest two by default", async () => {
    const store = new MemoryObjectStore();
    expect(await readLatestManifest(store, codec, volumeId)).toBeUndefined();
    const maps = [randomMap(50, 10), randomMap(60, 11), randomMap(70, 12)];
    for (const [i, chunks] of maps.entries()) await writeManifest(store, codec, volumeId, i + 1, chunks);
    const latest = await readLatestManifest(store, codec, volumeId);
    expect(latest?.epoch).toBe(3);
    expect(latest?.chunks).toEqual(new Map([...maps[2]!].sort((a, b) => a[0] - b[0])));
    expect(await listManifestEpochs(store, volumeId)).toEqual([2, 3]);
    expect(manifestKey(volumeId, 3)).toBe("vol/vol_m/m/0000000000000003");
  });

  it("prunes while the PUT is in flight, and keeps the predecessor when the PUT fails", async () => {
    const store = new MemoryObjectStore();
    for (const epoch of [1, 2]) await writeManifest(store, codec, volumeId, epoch, randomMap(5, epoch));
    const events: string[] = [];
    let release: () => void = () => {};
    const gated = Object.assign(Object.create(store) as MemoryObjectStore, {
      put: async (key: string, body: Buffer) => {
        events.push("put");
        await new Promise<void>((resolve) => (release = resolve));
        if (key === manifestKey(volumeId, 4)) throw new Error("network down");
        await store.put(key, body);
        events.push("put done");
      },
      list: async (options: Parameters<MemoryObjectStore["list"]>[0]) => {
        events.push("list");
        return store.list(options);
      },
    });
    const third = writeManifest(gated, codec, volumeId, 3, randomMap(5, 3));
    await new Promise((resolve) => setImmediate(resolve));
    expect([...events].sort()).toEqual(["list", "put"]); // both under way, the PUT not done
    release();
    await third;
    expect(await listManifestEpochs(store, volumeId)).toEqual([2, 3]);
    const fourth = writeManifest(gated, codec, volumeId, 4, randomMap(5, 4));
    await new Promise((resolve) => setImmediate(resolve));
    release();
    await expect(fourth).rejects.toThrow(/network down/);
    expect(await listManifestEpochs(store, volumeId)).toEqual([3]);
    expect((await readLatestManifest(store, codec, volumeId))?.epoch).toBe(3);
  });

  it("hands the prune over when asked: the write settles with its PUT, the prune after", async () => {
    const store = new MemoryObjectStore();
    for (const epoch of [1, 2]) await writeManifest(store, codec, volumeId, epoch, randomMap(5, epoch));
    let releaseList: () => void = () => {};
    const gated = Object.assign(Object.create(store) as MemoryObjectStore, {
      list: async (options: Parameters<MemoryObjectStore["list"]>[0]) => {
        await new Promise<void>((resolve) => (releaseList = resolve));
        return store.list(options);
      },
    });
    const pruning: Promise<void>[] = [];
    await writeManifest(gated, codec, volumeId, 3, randomMap(5, 3), { pruneInBackground: (prune) => void pruning.push(prune) });
    expect(pruning).toHaveLength(1);
    expect(await listManifestEpochs(store, volumeId)).toEqual([1, 2, 3]); // written; the prune still waits on its LIST
    releaseList();
    await pruning[0];
    expect(await listManifestEpochs(store, volumeId)).toEqual([2, 3]);
  });

  it("keeping one deletes the predecessor only once the PUT landed", async () => {
    const store = new MemoryObjectStore();
    await writeManifest(store, codec, volumeId, 1, randomMap(5, 1), { keep: 1 });
    const failing = Object.assign(Object.create(store) as MemoryObjectStore, {
      put: async () => {
        throw new Error("network down");
      },
    });
    await expect(writeManifest(failing, codec, volumeId, 2, randomMap(5, 2), { keep: 1 })).rejects.toThrow(/network down/);
    expect(await listManifestEpochs(store, volumeId)).toEqual([1]);
    await writeManifest(store, codec, volumeId, 3, randomMap(5, 3), { keep: 1 });
    expect(await listManifestEpochs(store, volumeId)).toEqual([3]);
  });

  it("serialises the map before the first await", async () => {
    const store = new MemoryObjectStore();
    const chunks = randomMap(10, 3);
    const expected = new Map([...chunks].sort((a, b) => a[0] - b[0]));
    const writing = writeManifest(store, codec, volumeId, 1, chunks);
    chunks.clear();
    await writing;
    expect((await readLatestManifest(store, codec, volumeId))?.chunks).toEqual(expected);
  });

  it("falls back past manifests that do not decode: flipped, moved to another epoch, another volume's", async () => {
    const store = new MemoryObjectStore();
    const keepAll = { keep: Number.POSITIVE_INFINITY };
    await writeManifest(store, codec, volumeId, 1, randomMap(5, 1), keepAll);
    await writeManifest(store, codec, volumeId, 2, randomMap(5, 2), keepAll);
    // epoch 5: flipped bit; epoch 4: epoch 2's object copied under a newer key; epoch 3: another volume's
    const flipped = Buffer.from((await store.get(manifestKey(volumeId, 2)))!);
    flipped[flipped.length - 3]! ^= 1;
    await store.put(manifestKey(volumeId, 5), flipped);
    await store.put(manifestKey(volumeId, 4), (await store.get(manifestKey(volumeId, 2)))!);
    await writeManifest(store, codec, "vol_other", 3, randomMap(5, 3), keepAll);
    await store.put(manifestKey(volumeId, 3), (await store.get(manifestKey("vol_other", 3)))!);
    const skipped: string[] = [];
    const latest = await readLatestManifest(store, codec, volumeId, { onInvalid: (key) => skipped.push(key) });
    expect(latest?.epoch).toBe(2);
    expect(skipped).toEqual([5, 4, 3].map((epoch) => manifestKey(volumeId, epoch)));
    const otherKey = new SealedCodec({ dataKey: randomBytes(32) });
    expect(await readLatestManifest(store, otherKey, volumeId)).toBeUndefined();
  });

  it("pages through more than one listing page of manifests", async () => {
    const store = new MemoryObjectStore();
    const chunks = randomMap(3, 4);
    for (let epoch = 1; epoch <= 1_005; epoch++) {
      await store.put(manifestKey(volumeId, epoch), codec.encodeManifest(encodeManifestBody(epoch, chunks), { volumeId, epoch }));
    }
    expect((await listManifestEpochs(store, volumeId)).length).toBe(1_005);
    expect((await readLatestManifest(store, codec, volumeId))?.epoch).toBe(1_005);
    await writeManifest(store, codec, volumeId, 1_006, chunks, { keep: 3 });
    expect(await listManifestEpochs(store, volumeId)).toEqual([1_004, 1_005, 1_006]);
  });

  it("propagates store failures instead of falling back to an older manifest", async () => {
    const store = new MemoryObjectStore();
    await writeManifest(store, codec, volumeId, 1, randomMap(5, 1));
    await writeManifest(store, codec, volumeId, 2, randomMap(5, 2));
    const failing = Object.assign(Object.create(store) as MemoryObjectStore, {
      get: async (key: string) => {
        if (key === manifestKey(volumeId, 2)) throw new Error("network down");
        return store.get(key);
      },
    });
    await expect(readLatestManifest(failing, codec, volumeId)).rejects.toThrow(/network down/);
  });
});
