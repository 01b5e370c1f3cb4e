import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { COMPRESSION_ID } from "./object-header";
import { compressPayload, decompressPayload, looksIncompressible } from "./compression";

const KiB = 1024;
const MiB = 1024 * KiB;

function textLike(length: number): Buffer {
  const words = "stratus block volume chunk cache commit generation epoch bucket ";
  return Buffer.from(words.repeat(Math.ceil(length / words.length)).slice(0, length));
}

describe("compressPayload", () => {
  it("stores random chunks plain without compressing them (the probe says no)", () => {
    const plain = randomBytes(MiB);
    expect(looksIncompressible(plain)).toBe(true);
    const { id, payload } = compressPayload(plain, "zstd");
    expect(id).toBe(COMPRESSION_ID.none);
    expect(payload).toBe(plain);
  });

  it("compresses chunks whose compressible part the probe reaches, wherever it lies", () => {
    for (const at of [0, 256 * KiB, 512 * KiB, 768 * KiB]) {
      const plain = randomBytes(MiB);
      textLike(256 * KiB).copy(plain, at); // a quarter of the chunk is text
      expect(looksIncompressible(plain)).toBe(false);
      const { id, payload } = compressPayload(plain, "zstd");
      expect(id).toBe(COMPRESSION_ID.zstd);
      expect(payload.length).toBeLessThan(0.8 * MiB);
      expect(decompressPayload(payload, id, "test").equals(plain)).toBe(true);
    }
  });

  it("compresses text and zeros, and does not probe small chunks", () => {
    for (const plain of [textLike(MiB), Buffer.alloc(MiB), textLike(4 * KiB)]) {
      const { id, payload } = compressPayload(plain, "zstd");
      expect(id).toBe(COMPRESSION_ID.zstd);
      expect(decompressPayload(payload, id, "test").equals(plain)).toBe(true);
    }
    const small = randomBytes(64 * KiB);
    expect(looksIncompressible(small)).toBe(false); // too small to probe: zstd decides
    expect(compressPayload(small, "zstd").id).toBe(COMPRESSION_ID.none);
  });
});
