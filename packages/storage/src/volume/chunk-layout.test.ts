import { describe, expect, it } from "vitest";
import { chunkKey, chunkPrefix, parseChunkKey, volumePrefix } from "./chunk-layout";

describe("chunk layout", () => {
  it("names chunk objects vol/<id>/c/<16 hex index>/<16 hex generation>", () => {
    expect(chunkKey("vol_abc", 0, 1)).toBe("vol/vol_abc/c/0000000000000000/0000000000000001");
    expect(chunkKey("vol_abc", 255, 2 ** 40)).toBe("vol/vol_abc/c/00000000000000ff/0000010000000000");
    expect(volumePrefix("vol_abc")).toBe("vol/vol_abc/");
    expect(chunkPrefix("vol_abc")).toBe("vol/vol_abc/c/");
  });

  it("sorts keys in chunk order, then generation order", () => {
    const pairs = [
      [16, 1],
      [2, 9],
      [2, 10],
      [0, 3],
      [2 ** 33, 1],
      [255, 4],
    ] as const;
    const keys = pairs.map(([i, g]) => chunkKey("v", i, g)).sort();
    expect(keys.map((key) => parseChunkKey(key)).map((p) => [p!.index, p!.generation])).toEqual([
      [0, 3],
      [2, 9],
      [2, 10],
      [16, 1],
      [255, 4],
      [2 ** 33, 1],
    ]);
  });

  it("parses its own keys and nothing else", () => {
    expect(parseChunkKey(chunkKey("vol_x", 12345, 678))).toEqual({ volumeId: "vol_x", index: 12345, generation: 678 });
    expect(parseChunkKey("vol/vol_x/header")).toBeUndefined();
    expect(parseChunkKey("vol/vol_x/c/12/0000000000000001")).toBeUndefined();
    expect(parseChunkKey("vol/a/b/c/0000000000000000/0000000000000001")).toBeUndefined();
  });

  it("refuses volume ids and numbers that would break the layout", () => {
    expect(() => volumePrefix("a/b")).toThrow(expect.objectContaining({ code: "EINVAL" }));
    expect(() => volumePrefix("")).toThrow(expect.objectContaining({ code: "EINVAL" }));
    expect(() => chunkKey("v", -1, 1)).toThrow(expect.objectContaining({ code: "EINVAL" }));
    expect(() => chunkKey("v", 1.5, 1)).toThrow(expect.objectContaining({ code: "EINVAL" }));
  });
});
