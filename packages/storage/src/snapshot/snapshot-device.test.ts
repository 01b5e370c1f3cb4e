import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SealedCodec } from "../codec/sealed-codec";
import { StorageError } from "../errors";
import { decodeManifestBody, encodeManifestBody } from "../format/manifest";
import { deleteSnapshotManifest, readSnapshotManifests, writeSnapshotManifest, type SnapshotManifest } from "../format/snapshot-manifest";
import { openInheritedKeys, sealInheritedKeys } from "../keys/inherited-keys";
import { MemoryObjectStore } from "../object-store/memory-store";
import { ChunkStore } from "../volume/chunk-store";
import { SnapshotDevice, type SnapshotChunk } from "./snapshot-device";

const CHUNK = 64 * 1024;

function pattern(seed: number, length = CHUNK): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (seed * 31 + i * 7) & 0xff;
  return out;
}

describe("snapshot device", () => {
  it("reads its own and an ancestor's objects, each under its own key; refuses writes with EPERM", async () => {
    const store = new MemoryObjectStore();
    const parentKey = randomBytes(32);
    const cloneKey = randomBytes(32);
    const codecs = new Map([
      ["vol_parent", new SealedCodec({ dataKey: parentKey })],
      ["vol_clone", new SealedCodec({ dataKey: cloneKey })],
    ]);
    await new ChunkStore({ store, volumeId: "vol_parent", codec: codecs.get("vol_parent") }).save(0, 65536, pattern(1));
    await new ChunkStore({ store, volumeId: "vol_clone", codec: codecs.get("vol_clone") }).save(2, 131072, pattern(2));
    const chunks = new Map<number, SnapshotChunk>([
      [0, { generation: 65536, storedSize: 1, owner: "vol_parent" }],
      [2, { generation: 131072, storedSize: 1, owner: "vol_clone" }],
    ]);
    const device = new SnapshotDevice({ volumeId: "vol_clone", size: 4 * CHUNK, chunkSize: CHUNK, store, chunks, codecFor: (id) => codecs.get(id)! });

    const all = Buffer.alloc(4 * CHUNK);
    await device.read(0, all);
    expect(all.subarray(0, CHUNK).equals(pattern(1))).toBe(true);
    expect(all.subarray(CHUNK, 2 * CHUNK).every((b) => b === 0)).toBe(true);
    expect(all.subarray(2 * CHUNK, 3 * CHUNK).equals(pattern(2))).toBe(true);
    const piece = Buffer.alloc(100);
    await device.read(2 * CHUNK + 50, piece);
    expect(piece.equals(pattern(2).subarray(50, 150))).toBe(true);

    expect(await device.blockStatus(0, 4 * CHUNK)).toEqual([
      { length: CHUNK, hole: false, zero: false },
      { length: CHUNK, hole: true, zero: true },
      { length: CHUNK, hole: false, zero: false },
      { length: CHUNK, hole: true, zero: true },
    ]);
    expect(device.capabilities.readOnly).toBe(true);
    await expect(device.write(0, Buffer.alloc(512))).rejects.toMatchObject({ code: "EPERM" });
    await expect(device.trim(0, CHUNK)).rejects.toMatchObject({ code: "EPERM" });
    await expect(device.read(4 * CHUNK - 10, Buffer.alloc(20))).rejects.toBeInstanceOf(StorageError);
  });

  it("refuses an ancestor's object opened with the wrong key (EIO, never wrong bytes)", async () => {
    const store = new MemoryObjectStore();
    const parent = new SealedCodec({ dataKey: randomBytes(32) });
    await new ChunkStore({ store, volumeId: "vol_parent", codec: parent }).save(0, 65536, pattern(3));
    const stranger = new SealedCodec({ dataKey: randomBytes(32) });
    const device = new SnapshotDevice({
      volumeId: "vol_clone",
      size: CHUNK,
      chunkSize: CHUNK,
      store,
      chunks: new Map([[0, { generation: 65536, storedSize: 1, owner: "vol_parent" }]]),
      codecFor: () => stranger,
    });
    await expect(device.read(0, Buffer.alloc(CHUNK))).rejects.toMatchObject({ code: "EIO" });
  });
});

describe("clone formats", () => {
  it("manifests keep each chunk's owner (version 2) and still read version 1", () => {
    const withOwners = new Map([
      [1, { generation: 65536, storedSize: 10, owner: "vol_a" }],
      [5, { generation: 131072, storedSize: 20 }],
      [9, { generation: 65537, storedSize: 30, owner: "vol_b" }],
    ]);
    expect(decodeManifestBody(encodeManifestBody(7, withOwners))).toEqual({ epoch: 7, chunks: withOwners });
    const plain = new Map([[3, { generation: 1, storedSize: 2 }]]);
    const body = encodeManifestBody(2, plain);
    expect(body[0]).toBe(1);
    expect(decodeManifestBody(body)).toEqual({ epoch: 2, chunks: plain });
  });

  it("snapshot manifests round-trip, are bound to their id, and can be deleted", async () => {
    const store = new MemoryObjectStore();
    const codec = new SealedCodec({ dataKey: randomBytes(32) });
    const snapshot: SnapshotManifest = {
      id: "snp_one",
      name: "monday",
      createdAt: "2026-12-07T03:00:00.000Z",
      sizeBytes: 4 * CHUNK,
      epoch: 12,
      chunks: new Map([[0, { generation: 65536, storedSize: 99, owner: "vol_parent" }]]),
    };
    await writeSnapshotManifest(store, codec, "vol_x", snapshot);
    expect(await readSnapshotManifests(store, codec, "vol_x")).toEqual([snapshot]);

    // The same body under another snapshot id does not open.
    const body = (await store.get("vol/vol_x/s/snp_one"))!;
    await store.put("vol/vol_x/s/snp_two", body);
    const invalid: string[] = [];
    expect(await readSnapshotManifests(store, codec, "vol_x", { onInvalid: (key) => invalid.push(key) })).toHaveLength(1);
    expect(invalid).toEqual(["vol/vol_x/s/snp_two"]);

    await deleteSnapshotManifest(store, "vol_x", "snp_one");
    await deleteSnapshotManifest(store, "vol_x", "snp_two");
    expect(await readSnapshotManifests(store, codec, "vol_x")).toEqual([]);
  });

  it("inherited keys open only with the clone's key and for the clone they were sealed for", () => {
    const cloneKey = randomBytes(32);
    const parentKey = randomBytes(32);
    const sealed = sealInheritedKeys("vol_clone", cloneKey, new Map([["vol_parent", parentKey]]));
    expect(JSON.stringify(sealed)).not.toContain(parentKey.toString("base64"));
    expect(openInheritedKeys("vol_clone", cloneKey, sealed).get("vol_parent")!.equals(parentKey)).toBe(true);
    expect(() => openInheritedKeys("vol_clone", randomBytes(32), sealed)).toThrow(/does not open/);
    expect(() => openInheritedKeys("vol_other", cloneKey, sealed)).toThrow(/does not open/);
  });
});
