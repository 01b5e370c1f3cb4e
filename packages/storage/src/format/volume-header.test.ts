import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { StorageError } from "../errors";
import { DirectoryObjectStore } from "../object-store/directory-store";
import { MemoryObjectStore } from "../object-store/memory-store";
import type { ObjectStore } from "../object-store/object-store";
import { chunkKey } from "../volume/chunk-layout";
import { createKeySlots } from "../keys/key-slots";
import { generateMasterKey } from "../keys/master-key";
import { manifestKey } from "./manifest";
import {
  decodeVolumeHeader,
  encodeVolumeHeader,
  listVolumeHeaders,
  readVolumeHeader,
  volumeHeaderKey,
  writeVolumeHeader,
  type VolumeHeader,
} from "./volume-header";

const { slots } = await createKeySlots({ volumeId: "vol_a", masterKey: generateMasterKey() });

function header(volumeId: string, overrides: Partial<VolumeHeader> = {}): VolumeHeader {
  return {
    format: 1,
    volumeId,
    name: `disk-${volumeId}`,
    sizeBytes: 10 * 2 ** 30,
    chunkSize: 2 ** 20,
    compression: "zstd",
    durability: "local",
    createdAt: "2026-11-02T10:00:00.000Z",
    slots,
    ...overrides,
  };
}

function expectCode(run: () => unknown, code: string, message: RegExp) {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe(code);
    expect((error as StorageError).message).toMatch(message);
    return;
  }
  throw new Error("expected a StorageError");
}

describe("volume header encoding", () => {
  it("round-trips as JSON", () => {
    const bytes = encodeVolumeHeader(header("vol_a"));
    expect(JSON.parse(bytes.toString()).format).toBe(1);
    expect(decodeVolumeHeader(bytes)).toEqual(header("vol_a"));
    expect(volumeHeaderKey("vol_a")).toBe("vol/vol_a/header");
  });

  it("refuses to encode an invalid header and to decode garbage or a newer format", () => {
    expectCode(() => encodeVolumeHeader(header("vol_a", { chunkSize: 0 })), "EINVAL", /chunkSize/);
    expectCode(() => encodeVolumeHeader(header("vol_a", { slots: [] })), "EINVAL", /slots/);
    expectCode(() => decodeVolumeHeader(Buffer.from("{nope")), "EIO", /not JSON/);
    expectCode(() => decodeVolumeHeader(Buffer.from(JSON.stringify({ ...header("vol_a"), format: 2 }))), "EIO", /format 2/);
    expectCode(() => decodeVolumeHeader(Buffer.from(JSON.stringify({ ...header("vol_a"), compression: "lzma" }))), "EIO", /compression/);
    const badSlot = { ...header("vol_a"), slots: [{ kind: "master", masterKeyId: "xyz", nonce: "", wrapped: "" }] };
    expectCode(() => decodeVolumeHeader(Buffer.from(JSON.stringify(badSlot))), "EIO", /slots/);
  });
});

const directories: string[] = [];
afterAll(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

const stores: Array<[string, () => Promise<ObjectStore>]> = [
  ["memory", async () => new MemoryObjectStore()],
  [
    "directory",
    async () => {
      const directory = await mkdtemp(path.join(tmpdir(), "stratus-format-"));
      directories.push(directory);
      return new DirectoryObjectStore(directory);
    },
  ],
];

describe.each(stores)("volume headers in a %s store", (_name, makeStore) => {
  it("writes, reads and rewrites a header", async () => {
    const store = await makeStore();
    expect(await readVolumeHeader(store, "vol_a")).toBeUndefined();
    await writeVolumeHeader(store, header("vol_a"));
    expect(await readVolumeHeader(store, "vol_a")).toEqual(header("vol_a"));
    await writeVolumeHeader(store, header("vol_a", { sizeBytes: 20 * 2 ** 30 }));
    expect((await readVolumeHeader(store, "vol_a"))?.sizeBytes).toBe(20 * 2 ** 30);
  });

  it("refuses a header stored under another volume's key", async () => {
    const store = await makeStore();
    await store.put(volumeHeaderKey("vol_b"), encodeVolumeHeader(header("vol_a")));
    await expect(readVolumeHeader(store, "vol_b")).rejects.toMatchObject({ code: "EIO", message: /names volume vol_a/ });
  });

  it("lists every volume's header, skipping over chunks and manifests", async () => {
    const store = await makeStore();
    const ids = ["vol_a", "vol_b", "vol_b0", "vol_c", "vol_d"];
    for (const id of ids) {
      for (let index = 0; index < 5; index++) await store.put(chunkKey(id, index, 65_536), Buffer.from("x"));
      await store.put(manifestKey(id, 1), Buffer.from("m"));
      if (id !== "vol_c") await writeVolumeHeader(store, header(id)); // vol_c: chunks left by a half-made volume
    }
    await store.put("vol/vol_d/header", Buffer.from("garbage"));
    const invalid: string[] = [];
    const headers = await listVolumeHeaders(store, { onInvalid: (key) => invalid.push(key) });
    expect(headers.map((h) => h.volumeId)).toEqual(["vol_a", "vol_b", "vol_b0"]);
    expect(invalid).toEqual(["vol/vol_d/header"]);
    await expect(listVolumeHeaders(store)).rejects.toMatchObject({ code: "EIO" });
  });
});
