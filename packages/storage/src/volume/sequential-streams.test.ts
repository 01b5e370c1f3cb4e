import { describe, expect, it } from "vitest";
import { MAX_STREAMS, SequentialStreams } from "./sequential-streams";

const K = 1024;

describe("SequentialStreams", () => {
  it("follows one reader: its third read in a row is sequential", () => {
    const streams = new SequentialStreams();
    expect(streams.note(0, 64 * K, 2)).toBeUndefined();
    expect(streams.note(64 * K, 128 * K, 2)).toBeUndefined();
    expect(streams.note(128 * K, 192 * K, 2)?.reads).toBe(2);
  });

  it("follows interleaved readers (four connections of one copy) each on its own", () => {
    const streams = new SequentialStreams();
    const starts = [0, 100, 200, 300].map((mib) => mib * K * K);
    const seen: Array<number | undefined> = [];
    for (let step = 0; step < 4; step++) {
      for (const start of starts) seen.push(streams.note(start + step * 256 * K, start + (step + 1) * 256 * K, 2)?.reads);
    }
    expect(seen.slice(0, 8)).toEqual(Array(8).fill(undefined));
    expect(seen.slice(8)).toEqual([2, 2, 2, 2, 3, 3, 3, 3]);
  });

  it("keeps each stream's read-ahead mark to itself", () => {
    const streams = new SequentialStreams();
    for (let i = 0; i < 3; i++) streams.note(i * K, (i + 1) * K, 2);
    streams.note(5000 * K, 5001 * K, 2);
    const first = streams.note(3 * K, 4 * K, 2)!;
    first.aheadUntil = 7;
    expect(streams.note(5001 * K, 5002 * K, 2)).toBeUndefined(); // the other one is young yet
    expect(streams.note(4 * K, 5 * K, 2)?.aheadUntil).toBe(7);
  });

  it("sees random reads as no stream, and forgets the stream used longest ago", () => {
    const streams = new SequentialStreams();
    for (let i = 0; i < 3; i++) streams.note(i * K, (i + 1) * K, 2);
    // As many unrelated reads as there are streams push the sequential one out.
    for (let i = 0; i < MAX_STREAMS; i++) expect(streams.note((1000 + 7 * i) * K, (1001 + 7 * i) * K, 2)).toBeUndefined();
    expect(streams.note(3 * K, 4 * K, 2)).toBeUndefined();
  });
});
