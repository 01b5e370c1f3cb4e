import { describe, expect, it } from "vitest";
import { walkChunks, type ChunkPiece } from "./chunk-walk";

function pieces(offset: number, length: number, chunkSize: number): ChunkPiece[] {
  const seen: ChunkPiece[] = [];
  walkChunks(offset, length, chunkSize, (piece) => {
    seen.push(piece);
  });
  return seen;
}

describe("walkChunks", () => {
  it("splits a range at chunk boundaries, each piece placed in its chunk and in the range", () => {
    expect(pieces(1000, 3000, 1024)).toEqual([
      { index: 0, within: 1000, length: 24, rangeOffset: 0 },
      { index: 1, within: 0, length: 1024, rangeOffset: 24 },
      { index: 2, within: 0, length: 1024, rangeOffset: 1048 },
      { index: 3, within: 0, length: 928, rangeOffset: 2072 },
    ]);
    expect(pieces(2048, 1024, 1024)).toEqual([{ index: 2, within: 0, length: 1024, rangeOffset: 0 }]);
    expect(pieces(5, 0, 1024)).toEqual([]);
  });

  it("stops at the first visit that returns false and says so", () => {
    const seen: number[] = [];
    expect(walkChunks(0, 4096, 1024, (piece) => (seen.push(piece.index), piece.index < 1))).toBe(false);
    expect(seen).toEqual([0, 1]);
    expect(walkChunks(0, 4096, 1024, () => true)).toBe(true);
  });
});
