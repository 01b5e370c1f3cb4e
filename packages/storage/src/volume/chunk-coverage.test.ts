import { describe, expect, it } from "vitest";
import { ChunkCoverage } from "./chunk-coverage";

const CHUNK = 1024 * 1024;
const KIB = 1024;

describe("ChunkCoverage", () => {
  it("completes a chunk written whole in one write, or across several", () => {
    const coverage = new ChunkCoverage({ chunkSize: CHUNK, size: 8 * CHUNK });
    expect(coverage.note(0, 2 * CHUNK)).toEqual([0, 1]);
    expect(coverage.note(2 * CHUNK, 2 * CHUNK + CHUNK / 2)).toEqual([]);
    expect(coverage.note(2 * CHUNK + CHUNK / 2, 3 * CHUNK + 4 * KIB)).toEqual([2]);
    expect(coverage.tracked).toBe(1); // chunk 3, partly
  });

  it("completes a chunk whose pieces arrive out of order, as from several connections", () => {
    const coverage = new ChunkCoverage({ chunkSize: CHUNK, size: 4 * CHUNK });
    const piece = 256 * KIB;
    const order = [3, 1, 0, 2]; // the last piece first, the first piece third
    const completed = order.flatMap((i) => coverage.note(CHUNK + i * piece, CHUNK + (i + 1) * piece));
    expect(completed).toEqual([1]);
    expect(coverage.tracked).toBe(0);
  });

  it("does not hand out a chunk that had a block written twice on the way (a random writer's, not a copy's)", () => {
    const coverage = new ChunkCoverage({ chunkSize: CHUNK, size: 2 * CHUNK });
    for (let i = 0; i < 3; i++) expect(coverage.note(0, 4 * KIB)).toEqual([]);
    expect(coverage.note(4 * KIB, CHUNK - 4 * KIB)).toEqual([]);
    expect(coverage.note(CHUNK - 4 * KIB, CHUNK)).toEqual([]);
    expect(coverage.note(0, 64 * KIB)).toEqual([]); // covered already: still not handed out
    // A whole-chunk write is a new version written once: handed out, as is a neighbour written once.
    expect(coverage.note(0, CHUNK)).toEqual([0]);
    expect(coverage.note(CHUNK + CHUNK / 2, 2 * CHUNK)).toEqual([]);
    expect(coverage.note(CHUNK, CHUNK + CHUNK / 2)).toEqual([1]);
    // After a reset (a freeze) the rewritten chunk starts afresh.
    coverage.note(0, 4 * KIB);
    coverage.note(0, 4 * KIB);
    coverage.reset();
    expect(coverage.note(0, CHUNK / 2)).toEqual([]);
    expect(coverage.note(CHUNK / 2, CHUNK)).toEqual([0]);
  });

  it("marks only whole 4 KiB blocks, so unaligned writes never complete a chunk by accident", () => {
    const coverage = new ChunkCoverage({ chunkSize: CHUNK, size: CHUNK });
    // Every byte written, but in 4 KiB pieces shifted by 512 bytes: the seams are half-blocks.
    for (let offset = 512; offset < CHUNK; offset += 4 * KIB) expect(coverage.note(offset, Math.min(offset + 4 * KIB, CHUNK))).toEqual([]);
    expect(coverage.note(0, 512)).toEqual([]);
    // No block was covered by one write: half the chunk rewritten aligned is still not all of it.
    expect(coverage.note(0, CHUNK / 2)).toEqual([]);
    expect(coverage.note(CHUNK / 2, CHUNK)).toEqual([0]);
  });

  it("completes a short last chunk (the volume's size is not a multiple of the chunk size)", () => {
    const size = 2 * CHUNK + 6 * KIB + 100; // the last chunk: one whole block and a short one
    const coverage = new ChunkCoverage({ chunkSize: CHUNK, size });
    expect(coverage.note(2 * CHUNK, 2 * CHUNK + 4 * KIB)).toEqual([]);
    expect(coverage.note(2 * CHUNK + 4 * KIB, size)).toEqual([2]);
  });

  it("works with chunks smaller than a block", () => {
    const coverage = new ChunkCoverage({ chunkSize: 512, size: 4096 });
    expect(coverage.note(0, 1024)).toEqual([0, 1]);
    expect(coverage.note(1100, 1536)).toEqual([]);
  });

  it("forgets partial coverage at reset, and the oldest past its limit", () => {
    const coverage = new ChunkCoverage({ chunkSize: CHUNK, size: 16 * CHUNK, maxTracked: 2 });
    coverage.note(0, CHUNK / 2);
    coverage.reset();
    expect(coverage.note(CHUNK / 2, CHUNK)).toEqual([]); // the first half no longer counts
    coverage.note(CHUNK, CHUNK + CHUNK / 2); // chunk 1
    coverage.note(2 * CHUNK, 2 * CHUNK + CHUNK / 2); // chunk 2
    coverage.note(3 * CHUNK, 3 * CHUNK + CHUNK / 2); // chunk 3: chunk 1, the oldest, is forgotten
    expect(coverage.tracked).toBe(2);
    expect(coverage.note(2 * CHUNK + CHUNK / 2, 3 * CHUNK)).toEqual([2]);
    expect(coverage.note(CHUNK + CHUNK / 2, 2 * CHUNK)).toEqual([]);
  });
});
