import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { chunkFileName } from "./cache-files";
import type { ReplayedChunk } from "./cache-journal";
import { replayChunkFiles } from "./cache-replay";

const CHUNK = 4096;
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("replayChunkFiles", () => {
  it("keeps current clean chunks and every dirty one, and deletes stale, short, stray and past-the-end files", () => {
    const chunkDir = mkdtempSync(path.join(os.tmpdir(), "stratus-replay-"));
    dirs.push(chunkDir);
    const file = (index: number, bytes: number) => writeFileSync(path.join(chunkDir, chunkFileName(index)), Buffer.alloc(bytes, 1));
    file(0, CHUNK); // clean, current
    file(1, CHUNK); // clean, superseded in the chunk map
    file(2, 100); // clean, torn
    file(3, 100); // dirty, short: fitted to the chunk
    file(9, CHUNK); // past the end
    writeFileSync(path.join(chunkDir, "stray"), "x"); // a fill torn before its record
    const chunks = new Map<number, ReplayedChunk>([
      [0, { dirty: false, generation: 7 }],
      [1, { dirty: false, generation: 5 }],
      [2, { dirty: false, generation: 7 }],
      [3, { dirty: true }],
      [4, { dirty: true }], // no file: a dirty hole
      [9, { dirty: true }],
    ]);
    const entries = replayChunkFiles({ chunkDir, chunks, chunkCount: 8, chunkLength: () => CHUNK, keepClean: (_index, generation) => generation === 7 });
    expect(entries).toEqual([
      { index: 0, state: "clean", generation: 7, bytes: CHUNK },
      { index: 3, state: "dirty", bytes: CHUNK },
      { index: 4, state: "dirty-hole" },
    ]);
    expect(readdirSync(chunkDir).sort()).toEqual([chunkFileName(0), chunkFileName(3)]);
    expect(statSync(path.join(chunkDir, chunkFileName(3))).size).toBe(CHUNK);
  });
});
