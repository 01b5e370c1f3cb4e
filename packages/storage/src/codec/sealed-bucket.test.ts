/**
 * The crypto acceptance checks at the bucket level: what a SealedCodec-backed ChunkStore leaves in
 * a real directory store, what tampering with those files does, and that a passphrase change
 * touches only the volume header.
 */
import { createHash } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { inspect } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DirectoryObjectStore } from "../object-store/directory-store";
import { ChunkStore } from "../volume/chunk-store";
import { chunkKey } from "../volume/chunk-layout";
import { changePassphrase, createKeySlots, unlockDataKey } from "../keys/key-slots";
import { generateMasterKey } from "../keys/master-key";
import { readLatestManifest, writeManifest } from "../format/manifest";
import { readVolumeHeader, writeVolumeHeader, type VolumeHeader } from "../format/volume-header";
import { SealedCodec } from "./sealed-codec";

const CHUNK = 256 * 1024;
const MARKER = Buffer.from("STRATUS-SECRET-MARKER-7f3a9c");
const volumeId = "vol_sealed";
const kdf = { N: 2 ** 10 };

function markedChunk(seed: number): Buffer {
  const chunk = Buffer.alloc(CHUNK, seed);
  for (let offset = 0; offset + MARKER.length <= CHUNK; offset += 4096 + seed) MARKER.copy(chunk, offset);
  return chunk;
}

async function allFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

let root: string;
let store: DirectoryObjectStore;
const fileOf = (key: string) => path.join(root, ...key.split("/"));

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "stratus-sealed-"));
  store = new DirectoryObjectStore(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("a sealed volume in the bucket", () => {
  it("holds no plaintext: not in chunks, manifests or the header", async () => {
    const passphrase = "passphrase-that-must-not-leak";
    const masterKey = generateMasterKey();
    const { dataKey, slots } = await createKeySlots({ volumeId, passphrase, masterKey, kdf });
    const codec = new SealedCodec({ dataKey, compression: "zstd" });
    const chunks = new ChunkStore({ store, volumeId, codec });
    const map = new Map<number, { generation: number; storedSize: number }>();
    for (let index = 0; index < 8; index++) map.set(index, { generation: 65_536, storedSize: await chunks.save(index, 65_536, markedChunk(index)) });
    await writeManifest(store, codec, volumeId, 1, map);
    await writeVolumeHeader(store, header(slots));
    const secrets = [
      MARKER,
      MARKER.subarray(0, 10),
      Buffer.from(passphrase),
      dataKey,
      Buffer.from(dataKey.toString("hex")),
      Buffer.from(dataKey.toString("base64")),
      masterKey,
      Buffer.from(masterKey.toString("base64")),
    ];
    const files = await allFiles(root);
    expect(files.length).toBe(10);
    for (const file of files) {
      const bytes = await readFile(file);
      for (const secret of secrets) expect(bytes.includes(secret), `${path.relative(root, file)} leaks`).toBe(false);
    }
    for (let index = 0; index < 8; index++) expect((await chunks.load(index, 65_536, CHUNK))?.equals(markedChunk(index))).toBe(true);
    expect((await readLatestManifest(store, codec, volumeId))?.chunks).toEqual(map);
    expect(inspect(chunks, { depth: 5, showHidden: true })).not.toContain(dataKey.toString("hex"));
  });

  it("fails reads with EIO for a flipped bit, a copy to another index or generation, and a replayed old generation", async () => {
    const { dataKey } = await createKeySlots({ volumeId, masterKey: generateMasterKey() });
    const chunks = new ChunkStore({ store, volumeId, codec: new SealedCodec({ dataKey }) });
    await chunks.save(0, 65_536, markedChunk(1));
    await chunks.save(0, 2 * 65_536, markedChunk(2)); // chunk 0 rewritten: generation 2 supersedes 1
    await chunks.save(1, 65_536, markedChunk(3));

    // A flipped bit anywhere in the object.
    const victim = fileOf(chunkKey(volumeId, 1, 65_536));
    const bytes = await readFile(victim);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await writeFile(victim, bytes);
    await expect(chunks.load(1, 65_536, CHUNK)).rejects.toMatchObject({ code: "EIO", message: /failed authentication/ });

    // Chunk 0's object copied to index 5 and to a generation it never had.
    await copyFile(fileOf(chunkKey(volumeId, 0, 2 * 65_536)), await makeParent(fileOf(chunkKey(volumeId, 5, 2 * 65_536))));
    await expect(chunks.load(5, 2 * 65_536, CHUNK)).rejects.toMatchObject({ code: "EIO" });
    await copyFile(fileOf(chunkKey(volumeId, 0, 2 * 65_536)), fileOf(chunkKey(volumeId, 0, 3 * 65_536)));
    await expect(chunks.load(0, 3 * 65_536, CHUNK)).rejects.toMatchObject({ code: "EIO" });

    // The old generation put back under the current generation's key.
    await copyFile(fileOf(chunkKey(volumeId, 0, 65_536)), fileOf(chunkKey(volumeId, 0, 2 * 65_536)));
    await expect(chunks.load(0, 2 * 65_536, CHUNK)).rejects.toMatchObject({ code: "EIO" });
    // The untouched old generation still reads as itself.
    expect((await chunks.load(0, 65_536, CHUNK))?.equals(markedChunk(1))).toBe(true);
  });

  it("changes the passphrase without touching any chunk object; the old passphrase stops working", async () => {
    const { dataKey, slots } = await createKeySlots({ volumeId, passphrase: "first", kdf });
    const chunks = new ChunkStore({ store, volumeId, codec: new SealedCodec({ dataKey }) });
    for (let index = 0; index < 4; index++) await chunks.save(index, 65_536, markedChunk(index));
    await writeVolumeHeader(store, header(slots));
    const before = await fingerprint(root);

    const stored = (await readVolumeHeader(store, volumeId))!;
    const rewrapped = await changePassphrase({ volumeId, slots: stored.slots, oldPassphrase: "first", newPassphrase: "second", kdf });
    await writeVolumeHeader(store, { ...stored, slots: rewrapped });

    const after = await fingerprint(root);
    const headerPath = path.join("vol", volumeId, "header");
    for (const [file, print] of before) if (file !== headerPath) expect(after.get(file), file).toEqual(print);
    expect(after.get(headerPath)).not.toEqual(before.get(headerPath));
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());

    const current = (await readVolumeHeader(store, volumeId))!;
    await expect(unlockDataKey({ volumeId, slots: current.slots, passphrase: "first" })).rejects.toMatchObject({ code: "EPERM", message: "wrong passphrase" });
    const unlocked = await unlockDataKey({ volumeId, slots: current.slots, passphrase: "second" });
    const reopened = new ChunkStore({ store, volumeId, codec: new SealedCodec({ dataKey: unlocked }) });
    for (let index = 0; index < 4; index++) expect((await reopened.load(index, 65_536, CHUNK))?.equals(markedChunk(index))).toBe(true);
  });

  it("a wrong passphrase writes nothing", async () => {
    const { slots } = await createKeySlots({ volumeId, passphrase: "right", kdf });
    await writeVolumeHeader(store, header(slots));
    const before = await fingerprint(root);
    await expect(changePassphrase({ volumeId, slots, oldPassphrase: "wrong", newPassphrase: "new", kdf })).rejects.toMatchObject({ code: "EPERM" });
    expect(await fingerprint(root)).toEqual(before);
  });
});

function header(slots: VolumeHeader["slots"]): VolumeHeader {
  return {
    format: 1,
    volumeId,
    name: "sealed",
    sizeBytes: 8 * CHUNK,
    chunkSize: CHUNK,
    compression: "zstd",
    durability: "cloud",
    createdAt: new Date(0).toISOString(),
    slots,
  };
}

/** Relative path -> content hash and mtime, for every object file (the directory store's etag). */
async function fingerprint(dir: string): Promise<Map<string, { sha256: string; mtimeMs: number }>> {
  const prints = new Map<string, { sha256: string; mtimeMs: number }>();
  for (const file of await allFiles(dir)) {
    const sha256 = createHash("sha256")
      .update(await readFile(file))
      .digest("hex");
    prints.set(path.relative(dir, file), { sha256, mtimeMs: (await stat(file)).mtimeMs });
  }
  return prints;
}

async function makeParent(file: string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  return file;
}
