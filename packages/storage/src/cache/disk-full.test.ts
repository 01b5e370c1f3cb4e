/**
 * A full cache disk (a real 4 MiB tmpfs, mounted for this file: the tests run as root here):
 * a write that cannot get space fails with ENOSPC and changes nothing else; acknowledged data
 * is never lost; once commits make chunks clean, evicting them makes room again. A cold read
 * whose cache fill the disk refuses still returns the data.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryObjectStore } from "../object-store/memory-store";
import { MemoryChunkIndex } from "../testing/memory-chunk-index";
import { seededBytes } from "../testing/seeded-random";
import { Volume } from "../volume/volume";

const CHUNK = 64 * 1024;

describe("disk cache on a full disk", () => {
  let mountPoint: string;

  beforeAll(() => {
    mountPoint = mkdtempSync(path.join(tmpdir(), "stratus-tmpfs-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mountPoint]);
  });

  afterAll(() => {
    if (!mountPoint) return;
    try {
      execFileSync("umount", ["-l", mountPoint]); // lazy: a failed test may leave files open
    } finally {
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });

  // A cloud volume's whole-chunk writes take the O_DIRECT way to the disk (direct-pieces.ts; tmpfs
  // takes O_DIRECT since Linux 6.6), a local one's the buffered way: both must refuse cleanly.
  it.each(["local", "cloud"] as const)(
    "refuses the write with ENOSPC, keeps every acknowledged write, and recovers after a commit (durability %s)",
    async (durability) => {
      const store = new MemoryObjectStore();
      const index = new MemoryChunkIndex();
      const size = 128 * CHUNK; // 8 MiB of data through a 4 MiB disk
      const open = () =>
        Volume.open({
          volumeId: "vol_full",
          size,
          chunkSize: CHUNK,
          store,
          index,
          cacheDir: mountPoint,
          durability,
          cacheBytes: 1024 * CHUNK, // neither the target nor the dirty limit stops us: the disk does
          dirtyLimitBytes: 1024 * CHUNK,
          commitIntervalMs: 3_600_000,
        });
      const volume = await open();
      const reference = Buffer.alloc(size);
      let refused: unknown;
      let chunk = 0;
      for (; chunk < 128; chunk++) {
        const data = seededBytes(CHUNK, chunk);
        try {
          await volume.write(chunk * CHUNK, data);
        } catch (error) {
          refused = error;
          break;
        }
        data.copy(reference, chunk * CHUNK);
      }
      expect(refused).toMatchObject({ name: "StorageError", code: "ENOSPC" });
      expect(String((refused as Error).message)).toMatch(/cache disk is full/);
      expect(chunk).toBeGreaterThan(10);
      // What was acknowledged is all there, and a flush still works.
      const target = Buffer.alloc(size);
      await volume.read(0, target);
      expect(target.equals(reference)).toBe(true);
      await volume.flush();

      // A commit makes the chunks clean; a full disk then evicts them to make room.
      await volume.commit();
      for (; chunk < 128; chunk++) {
        const data = seededBytes(CHUNK, chunk + 1000);
        await volume.write(chunk * CHUNK, data);
        data.copy(reference, chunk * CHUNK);
        if (chunk % 16 === 0) await volume.commit();
      }
      await volume.read(0, target);
      expect(target.equals(reference)).toBe(true);

      // The journal stayed consistent: a crash and a reopen from the same disk read back everything.
      // The reads' cache fills land (or fail) first: in-process, an abandoned fill keeps its file's
      // blocks until its write returns, and this disk has no room for the reopen's journal meanwhile.
      await volume.cache(0, size);
      volume.abandon();
      const reopened = await open();
      const again = Buffer.alloc(size);
      await reopened.read(0, again);
      expect(again.equals(reference)).toBe(true);
      await reopened.close();
    },
  );

  it("serves a cold read in full when the disk refuses the cache fill; the chunk stays uncached", async () => {
    const store = new MemoryObjectStore();
    const index = new MemoryChunkIndex();
    const size = 128 * CHUNK;
    const open = (cacheDir: string) =>
      Volume.open({
        volumeId: "vol_cold",
        size,
        chunkSize: CHUNK,
        store,
        index,
        cacheDir,
        durability: "local",
        cacheBytes: 1024 * CHUNK,
        dirtyLimitBytes: 1024 * CHUNK,
        commitIntervalMs: 3_600_000,
        readAheadChunks: 0,
      });
    // Committed content, written through a cache elsewhere.
    const elsewhere = mkdtempSync(path.join(tmpdir(), "stratus-elsewhere-"));
    const writer = await open(elsewhere);
    const reference = seededBytes(4 * CHUNK, 2000);
    await writer.write(0, reference);
    await writer.close();
    rmSync(elsewhere, { recursive: true, force: true });

    // Fill the tmpfs with uncommitted data of chunks 64.. until it refuses.
    const volume = await open(mountPoint);
    let refused: unknown;
    for (let chunk = 64; chunk < 128 && refused === undefined; chunk++) {
      await volume.write(chunk * CHUNK, seededBytes(CHUNK, chunk)).catch((error: unknown) => (refused = error));
    }
    expect(refused).toMatchObject({ code: "ENOSPC" });
    const before = volume.stats().cachedBytes;

    const target = Buffer.alloc(4 * CHUNK);
    await volume.read(0, target);
    expect(target.equals(reference)).toBe(true);
    await volume.cache(0, 4 * CHUNK); // waits for any fill to land or fail
    expect(volume.stats().cachedBytes).toBe(before);
    await volume.read(0, target);
    expect(target.equals(reference)).toBe(true);
    await volume.close();
  });
});
