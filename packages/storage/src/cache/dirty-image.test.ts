/**
 * A cache folder's uncommitted writes as a raw image, from a folder the engine itself left: committed
 * chunks are holes, dirty chunks sit at their offsets (a partial write within a committed chunk with
 * the rest of that chunk's content), a trimmed dirty chunk is zeros, and the folder is not changed.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { buffer } from "node:stream/consumers";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryObjectStore } from "../object-store/memory-store";
import { MemoryChunkIndex } from "../testing/memory-chunk-index";
import { seededBytes } from "../testing/seeded-random";
import { Volume } from "../volume/volume";
import { CacheBudget } from "./cache-budget";
import { dirtyImageStream, listDirtyChunks, writeDirtyImage } from "./dirty-image";

const CHUNK = 64 * 1024;
const SIZE = 16 * CHUNK;
const roots: string[] = [];

afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

/** A cache folder with chunks 0-3 committed, then 2 rewritten in part, 9 written whole and 3 trimmed, never committed. */
async function fencedCache(): Promise<{ dir: string; expected: Buffer; root: string }> {
  const root = mkdtempSync(path.join(os.tmpdir(), "stratus-dirty-image-"));
  roots.push(root);
  const volume = await Volume.open({
    volumeId: "vol_x",
    size: SIZE,
    chunkSize: CHUNK,
    store: new MemoryObjectStore(),
    index: new MemoryChunkIndex(),
    cacheDir: root,
    cacheBudget: new CacheBudget({ targetBytes: 64 * CHUNK, dirtyLimitBytes: 64 * CHUNK }),
    durability: "local",
    commitIntervalMs: 3_600_000,
  });
  const committed = seededBytes(4 * CHUNK, 1);
  await volume.write(0, committed);
  await volume.commit();
  const partial = seededBytes(1000, 2);
  const whole = seededBytes(CHUNK, 3);
  await volume.write(2 * CHUNK + 500, partial);
  await volume.write(9 * CHUNK, whole);
  await volume.trim(3 * CHUNK, CHUNK);
  await volume.flush();
  volume.abandon(); // fenced: nothing more is committed

  const expected = Buffer.alloc(SIZE);
  committed.copy(expected, 2 * CHUNK, 2 * CHUNK, 3 * CHUNK); // the rest of chunk 2 as it was
  partial.copy(expected, 2 * CHUNK + 500);
  whole.copy(expected, 9 * CHUNK);
  return { dir: path.join(root, "vol_x"), expected, root };
}

describe("dirty image", () => {
  it("lists only the dirty chunks, a trimmed one as a hole", async () => {
    const { dir } = await fencedCache();
    expect(listDirtyChunks(dir).map((chunk) => [chunk.index, chunk.file === null])).toEqual([
      [2, false],
      [3, true],
      [9, false],
    ]);
  });

  it("writes a sparse file of the volume's size with the dirty chunks at their offsets", async () => {
    const { dir, expected, root } = await fencedCache();
    const journalBefore = readFileSync(path.join(dir, "journal"));
    const out = path.join(root, "image.raw");
    expect(writeDirtyImage(dir, { sizeBytes: SIZE, chunkSize: CHUNK }, out)).toEqual({ chunks: 2, bytes: 2 * CHUNK });
    const image = readFileSync(out);
    expect(image.length).toBe(SIZE);
    expect(image.equals(expected)).toBe(true);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    // Read-only: the folder is as the engine left it.
    expect(readFileSync(path.join(dir, "journal")).equals(journalBefore)).toBe(true);
  });

  it("streams the same bytes, and leaves out chunks past a smaller size", async () => {
    const { dir, expected } = await fencedCache();
    expect((await buffer(dirtyImageStream(dir, { sizeBytes: SIZE, chunkSize: CHUNK }))).equals(expected)).toBe(true);
    const shrunk = await buffer(dirtyImageStream(dir, { sizeBytes: 8 * CHUNK + 100, chunkSize: CHUNK }));
    expect(shrunk.equals(expected.subarray(0, 8 * CHUNK + 100))).toBe(true);
  });
});
