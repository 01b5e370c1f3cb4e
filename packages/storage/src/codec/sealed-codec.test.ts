import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { StorageError } from "../errors";
import { seededBytes } from "../testing/seeded-random";
import { SealedCodec } from "./sealed-codec";
import { HEADER_BYTES, OBJECT_MAGIC, TAG_BYTES } from "./object-header";

const MiB = 1 << 20;
const dataKey = randomBytes(32);
const codec = new SealedCodec({ dataKey, compression: "zstd" });
const at = { volumeId: "vol_abc", index: 7, generation: 65_539 };

function textLike(length: number): Buffer {
  const words = ["stratus", "chunk", "volume", "the", "of", "inode", "journal", "block", "\n"];
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < length; i++) {
    const word = words[(i * 7 + (i >> 3)) % words.length]!;
    parts.push(word);
    size += word.length + 1;
  }
  return Buffer.from(parts.join(" ")).subarray(0, length);
}

async function expectEio(run: () => unknown, message: RegExp) {
  let caught: unknown;
  try {
    await run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StorageError);
  expect((caught as StorageError).code).toBe("EIO");
  expect((caught as StorageError).message).toMatch(message);
}

describe("SealedCodec", () => {
  it("round-trips random, text-like and mostly-zero chunks", () => {
    for (const plain of [seededBytes(MiB, 1), seededBytes(3 * 65536 + 123, 4), textLike(MiB), Buffer.alloc(MiB), Buffer.alloc(0), Buffer.from("x")]) {
      const stored = codec.encode(plain, at);
      expect(codec.decode(stored, at).equals(plain)).toBe(true);
    }
  });

  it("writes the header: magic, version, kind, compression, flags, nonce", () => {
    const stored = codec.encode(textLike(MiB), at);
    expect(stored.subarray(0, 4).equals(OBJECT_MAGIC)).toBe(true);
    expect([...stored.subarray(4, 8)]).toEqual([1, 1, 1, 0]);
    expect(stored.length).toBeLessThan(MiB / 2);
    const again = codec.encode(textLike(MiB), at);
    expect(again.subarray(8, 20).equals(stored.subarray(8, 20))).toBe(false); // fresh nonce
  });

  it("stores incompressible data plain (compression byte 0), at a fixed overhead", () => {
    const plain = seededBytes(MiB, 2);
    const stored = codec.encode(plain, at);
    expect(stored[6]).toBe(0);
    expect(stored.length).toBe(MiB + HEADER_BYTES + TAG_BYTES);
    const uncompressed = new SealedCodec({ dataKey, compression: "none" }).encode(textLike(4096), at);
    expect(uncompressed[6]).toBe(0);
    expect(codec.decode(uncompressed, at).equals(textLike(4096))).toBe(true);
  });

  it("leaves no plaintext in the object", () => {
    const marker = Buffer.from("STRATUS-PLAINTEXT-MARKER-0123456789");
    const plain = Buffer.alloc(MiB);
    for (let offset = 0; offset + marker.length <= MiB; offset += 4096) marker.copy(plain, offset);
    for (const c of [codec, new SealedCodec({ dataKey, compression: "none" })]) {
      const stored = c.encode(plain, at);
      expect(stored.includes(marker)).toBe(false);
      expect(stored.includes(marker.subarray(0, 12))).toBe(false);
    }
  });

  it("fails with EIO on any flipped bit", async () => {
    const stored = codec.encode(textLike(64 * 1024), at);
    const positions = [0, 4, 5, 6, 7, 8, 19, 20, Math.floor(stored.length / 2), stored.length - 17, stored.length - 1];
    for (const position of positions) {
      const bad = Buffer.from(stored);
      bad[position]! ^= 0x10;
      await expectEio(() => codec.decode(bad, at), /magic|version|kind|compression|flags|authentication/);
    }
  });

  it("fails with EIO on a flipped bit in any slice of a plain-stored object (the cipher runs in 64 KiB slices)", async () => {
    const stored = codec.encode(seededBytes(3 * 65536 + 123, 5), at);
    expect(stored[6]).toBe(0); // compression byte: stored plain, so it is decrypted slice by slice
    for (const position of [30, 65536 + 30, 2 * 65536 + 4000, 3 * 65536 + 40, stored.length - 1]) {
      const bad = Buffer.from(stored);
      bad[position]! ^= 0x01;
      await expectEio(() => codec.decode(bad, at), /authentication/);
    }
  });

  it("fails with EIO for an object moved to another index, generation or volume", async () => {
    const stored = codec.encode(textLike(4096), at);
    await expectEio(() => codec.decode(stored, { ...at, index: 8 }), /chunk 8 generation 65539 .* failed authentication/);
    await expectEio(() => codec.decode(stored, { ...at, generation: 65_540 }), /failed authentication/);
    await expectEio(() => codec.decode(stored, { ...at, volumeId: "vol_abd" }), /failed authentication/);
    await expectEio(() => codec.decode(stored, { ...at, volumeId: "vol_ab" }), /failed authentication/);
  });

  it("fails with EIO under another data key, and on truncation or a foreign object", async () => {
    const stored = codec.encode(textLike(4096), at);
    await expectEio(() => new SealedCodec({ dataKey: randomBytes(32) }).decode(stored, at), /failed authentication/);
    await expectEio(() => codec.decode(stored.subarray(0, stored.length - 1), at), /failed authentication/);
    await expectEio(() => codec.decode(stored.subarray(0, 30), at), /truncated/);
    await expectEio(() => codec.decode(Buffer.alloc(0), at), /truncated/);
    await expectEio(() => codec.decode(Buffer.from("plain old bytes that were never sealed"), at), /bad magic/);
    const future = Buffer.from(stored);
    future[4] = 2;
    await expectEio(() => codec.decode(future, at), /unsupported format version 2/);
  });

  it("keeps chunks and manifests apart", async () => {
    const manifest = codec.encodeManifest(textLike(1000), { volumeId: at.volumeId, epoch: 3 });
    expect(manifest[5]).toBe(2);
    expect(codec.decodeManifest(manifest, { volumeId: at.volumeId, epoch: 3 }).equals(textLike(1000))).toBe(true);
    await expectEio(() => codec.decodeManifest(manifest, { volumeId: at.volumeId, epoch: 2 }), /manifest epoch 2 .* failed authentication/);
    await expectEio(() => codec.decode(manifest, { ...at, generation: 3 }), /not a chunk object/);
    const chunk = codec.encode(textLike(1000), at);
    await expectEio(() => codec.decodeManifest(chunk, { volumeId: at.volumeId, epoch: at.generation }), /not a manifest object/);
  });

  it("never shows the data key", () => {
    const hex = dataKey.toString("hex");
    const b64 = dataKey.toString("base64");
    const shown = [JSON.stringify(codec), inspect(codec, { showHidden: true, depth: 10 }), String(Object.keys(codec)), JSON.stringify({ ...codec })];
    let decodeError: unknown;
    try {
      codec.decode(Buffer.alloc(100), at);
    } catch (error) {
      decodeError = error;
    }
    shown.push(inspect(decodeError, { showHidden: true, depth: 10 }), JSON.stringify(decodeError));
    for (const text of shown) {
      expect(text).not.toContain(hex);
      expect(text).not.toContain(b64);
    }
    expect(JSON.parse(JSON.stringify(codec))).toEqual({ name: "sealed-zstd", compression: "zstd" });
  });

  it("refuses a data key that is not 32 bytes", () => {
    expect(() => new SealedCodec({ dataKey: randomBytes(16) })).toThrow(/32 bytes/);
  });
});
