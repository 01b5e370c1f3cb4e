import { describe, expect, it } from "vitest";
import { CHUNK_SIZES, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, isValidChunkSize, parseSize } from "./sizes";

describe("chunk size rule", () => {
  it("takes powers of two from 64 KiB to 64 MiB and nothing else", () => {
    expect(CHUNK_SIZES[0]).toBe(MIN_CHUNK_SIZE);
    expect(CHUNK_SIZES.at(-1)).toBe(MAX_CHUNK_SIZE);
    expect(CHUNK_SIZES).toHaveLength(11);
    expect(CHUNK_SIZES.every(isValidChunkSize)).toBe(true);
    expect(CHUNK_SIZES).toContain(DEFAULT_CHUNK_SIZE);
    for (const bad of [0, 512, 32 * 1024, 3 * 1024 * 1024, 128 * 1024 * 1024, 65536.5, Number.NaN]) expect(isValidChunkSize(bad)).toBe(false);
  });
});

describe("parseSize", () => {
  it("reads binary units and refuses fractions of a byte", () => {
    expect(parseSize("64K")).toBe(65536);
    expect(parseSize("1.5 GiB")).toBe(1.5 * 2 ** 30);
    expect(() => parseSize("0.1K")).toThrow(/whole number/);
    expect(() => parseSize("ten")).toThrow(/not a size/);
  });
});
