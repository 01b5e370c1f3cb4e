/**
 * A `cloud` volume's FLUSH is kept by the bucket, so it does not sync the local cache; the cache
 * is then trusted after a kill -9 (the page cache survives) but thrown away after a reboot that
 * found it unsynced (any file or journal record may be torn). Reboots are played by changing the
 * boot id the volume is opened with.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryObjectStore } from "../object-store/memory-store";
import { FaultyObjectStore } from "../testing/faulty-object-store";
import { MemoryChunkIndex } from "../testing/memory-chunk-index";
import { seededBytes } from "../testing/seeded-random";
import { Volume, type Durability } from "../volume/volume";
import { CacheBudget } from "./cache-budget";
import { DiskCache, registerDormantCaches } from "./disk-cache";

const CHUNK = 64 * 1024;
const VOLUME = "vol_reboot";
const roots: string[] = [];

afterEach(() => {
  vi.restoreAllMocks();
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

function setup() {
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), "stratus-reboot-"));
  roots.push(cacheDir);
  const store = new FaultyObjectStore(new MemoryObjectStore());
  const index = new MemoryChunkIndex();
  const budget = new CacheBudget({ targetBytes: 64 * CHUNK, dirtyLimitBytes: 64 * CHUNK });
  const open = (bootId: string | null, durability: Durability = "cloud") =>
    Volume.open({
      volumeId: VOLUME,
      size: 16 * CHUNK,
      chunkSize: CHUNK,
      store,
      index,
      cacheDir,
      cacheBudget: budget,
      durability,
      bootId,
      commitIntervalMs: 3_600_000,
    });
  const chunkFiles = () => (existsSync(path.join(cacheDir, VOLUME, "c")) ? readdirSync(path.join(cacheDir, VOLUME, "c")).length : 0);
  const marker = () => existsSync(path.join(cacheDir, VOLUME, "unsynced"));
  return { cacheDir, store, budget, open, chunkFiles, marker };
}

async function readBack(volume: Volume, length: number): Promise<Buffer> {
  const out = Buffer.alloc(length);
  await volume.read(0, out);
  return out;
}

describe("cloud durability and reboots", () => {
  it("commits at a cloud flush without syncing the cache; after a reboot the unsynced cache starts empty and reads come from the bucket", async () => {
    const { store, open, chunkFiles, marker } = setup();
    const flushed = seededBytes(4 * CHUNK, 1);
    const sync = vi.spyOn(DiskCache.prototype, "sync");

    const volume = await open("boot-1");
    await volume.write(0, flushed);
    await volume.flush();
    expect(sync).not.toHaveBeenCalled();
    expect(store.calls.put).toBeGreaterThanOrEqual(4); // the flush's promise is in the bucket
    await volume.write(8 * CHUNK, seededBytes(CHUNK, 2)); // never flushed
    expect(marker()).toBe(true);
    volume.abandon(); // the power goes

    const gets = store.calls.get;
    const rebooted = await open("boot-2");
    expect(chunkFiles()).toBe(0);
    expect(rebooted.dirtyBytes).toBe(0); // the unflushed write may be lost, and is
    expect(await readBack(rebooted, 4 * CHUNK)).toEqual(flushed);
    expect(store.calls.get - gets).toBe(4);
    expect((await readBack(rebooted, 9 * CHUNK)).subarray(8 * CHUNK).equals(Buffer.alloc(CHUNK))).toBe(true);
    await rebooted.close();
  });

  it("keeps the unsynced cache after a kill -9 in the same boot: cached chunks are served locally and dirty ones commit", async () => {
    const { store, open } = setup();
    const flushed = seededBytes(4 * CHUNK, 3);
    const unflushed = seededBytes(CHUNK, 4);

    const volume = await open("boot-1");
    await volume.write(0, flushed);
    await volume.flush();
    await volume.write(8 * CHUNK, unflushed);
    volume.abandon(); // kill -9: the page cache survives

    const gets = store.calls.get;
    const restarted = await open("boot-1");
    const all = await readBack(restarted, 9 * CHUNK);
    expect(all.subarray(0, 4 * CHUNK)).toEqual(flushed);
    expect(all.subarray(8 * CHUNK)).toEqual(unflushed);
    expect(store.calls.get).toBe(gets);
    await restarted.close();
  });

  it("syncs at a clean close and removes the marker, so a reboot keeps the warm cache", async () => {
    const { store, open, chunkFiles, marker } = setup();
    const data = seededBytes(4 * CHUNK, 5);
    const volume = await open("boot-1");
    await volume.write(0, data);
    await volume.flush();
    await volume.close();
    expect(marker()).toBe(false);

    const gets = store.calls.get;
    const rebooted = await open("boot-2");
    expect(chunkFiles()).toBe(4);
    expect(await readBack(rebooted, 4 * CHUNK)).toEqual(data);
    expect(store.calls.get).toBe(gets);
    expect(marker()).toBe(true); // written to without syncing again
    await rebooted.close();
  });

  it("a local volume opened on a cache left unsynced in this boot syncs all of it at its first flush, then drops the marker", async () => {
    const { open, marker } = setup();
    const cloud = await open("boot-1");
    await cloud.write(0, seededBytes(2 * CHUNK, 6));
    await cloud.flush();
    cloud.abandon();

    const sync = vi.spyOn(DiskCache.prototype, "sync");
    const local = await open("boot-1", "local");
    expect(marker()).toBe(true);
    await local.flush();
    expect(sync).toHaveBeenCalledTimes(1);
    expect(marker()).toBe(false);
    await local.close();
  });

  it("a lazy owner restarted after a kill -9 in the same boot syncs the files the dead one left unsynced before its close drops the marker", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "stratus-reboot-"));
    roots.push(dir);
    const options = { dir, chunkCount: 4, chunkLength: () => CHUNK, lazySync: true, bootId: "boot-1" };
    const first = DiskCache.open({ ...options, budget: new CacheBudget({ targetBytes: 64 * CHUNK, dirtyLimitBytes: 64 * CHUNK }) }, () => true);
    expect(first.write(0, 0, CHUNK, seededBytes(CHUNK, 9), 0, false)).toBe(true);
    expect(first.write(1, 0, CHUNK, seededBytes(CHUNK, 10), 0, false)).toBe(true);
    first.close(false); // kill -9

    const second = DiskCache.open({ ...options, budget: new CacheBudget({ targetBytes: 64 * CHUNK, dirtyLimitBytes: 64 * CHUNK }) }, () => true);
    expect(second.unsyncedCount).toBe(2);
    await second.sync();
    expect(second.unsyncedCount).toBe(0);
    second.close(true);
    expect(existsSync(path.join(dir, "unsynced"))).toBe(false);
  });

  it("syncs at every flush where the boot cannot be told", async () => {
    const { open, marker } = setup();
    const sync = vi.spyOn(DiskCache.prototype, "sync");
    const volume = await open(null);
    await volume.write(0, seededBytes(CHUNK, 7));
    await volume.flush();
    expect(sync).toHaveBeenCalledTimes(1);
    expect(marker()).toBe(false);
    await volume.close();
  });

  it("a gateway starting after a reboot discards a dormant cache left unsynced, dirty chunks and all", async () => {
    const { cacheDir, open, chunkFiles, marker } = setup();
    const volume = await open("boot-1");
    await volume.write(0, seededBytes(3 * CHUNK, 8)); // dirty, never flushed
    volume.abandon();

    const budget = new CacheBudget({ targetBytes: 64 * CHUNK, dirtyLimitBytes: 64 * CHUNK });
    expect(registerDormantCaches(cacheDir, budget, "boot-1")).toEqual([VOLUME]); // same boot: commit them
    const after = new CacheBudget({ targetBytes: 64 * CHUNK, dirtyLimitBytes: 64 * CHUNK });
    expect(registerDormantCaches(cacheDir, after, "boot-2")).toEqual([]);
    expect(chunkFiles()).toBe(0);
    expect(marker()).toBe(false);
    expect(after.cachedBytes).toBe(0);
  });
});
