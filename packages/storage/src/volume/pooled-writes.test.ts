import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { open as openFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { POOLED_WRITE_BYTES } from "../cache/cache-writes";
import { MemoryObjectStore } from "../object-store/memory-store";
import { seededBytes } from "../testing/seeded-random";
import { CHUNK, useVolumeSuiteFixture } from "../testing/volume-suite-fixture";

/**
 * Holds every thread of libuv's pool: each waits in open() on a FIFO until releaseAll() opens its
 * other end, so a write handed to the pool meanwhile waits in its queue, deterministically.
 */
async function holdThreadPool(dir: string) {
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const fifos = Array.from({ length: threads }, (_, i) => path.join(dir, `hold-${i}`));
  for (const fifo of fifos) execFileSync("mkfifo", [fifo]);
  const readers = fifos.map((fifo) => openFile(fifo, "r"));
  return async () => {
    const writers = fifos.map((fifo) => openSync(fifo, "w")); // returns once the reader's open is there
    for (const handle of await Promise.all(readers)) await handle.close();
    for (const fd of writers) closeSync(fd);
  };
}

describe("pooled writes (memory store)", () => {
  const f = useVolumeSuiteFixture("pooled writes", { create: async () => new MemoryObjectStore() });

  it("keeps a chunk dirty when its commit settles before a large write into it landed", async () => {
    const s = f.setup();
    const volume = await s.open();
    const reference = seededBytes(CHUNK, 1);
    await volume.write(0, reference);
    await volume.commit();
    expect(volume.stats().dirtyBytes).toBe(0);

    const fifoDir = mkdtempSync(path.join(tmpdir(), "pooled-writes-"));
    const release = await holdThreadPool(fifoDir);
    const piece = seededBytes(POOLED_WRITE_BYTES, 2);
    piece.copy(reference, 0);
    let landed = false;
    const write = volume.write(0, piece).then(() => (landed = true));
    // The commit freezes, uploads and settles the chunk while the write waits for a pool thread.
    await volume.commit();
    expect(landed).toBe(false);
    expect(volume.stats().dirtyBytes).toBe(CHUNK); // not taken as committed
    await release();
    await write;
    await volume.commit();
    expect(volume.stats().dirtyBytes).toBe(0);
    await volume.close();

    const reopened = await s.open({ cacheDir: f.freshCacheDir() });
    expect((await f.readAll(reopened)).subarray(0, CHUNK).equals(reference)).toBe(true);
    await reopened.close();
    rmSync(fifoDir, { recursive: true, force: true });
  });
});
