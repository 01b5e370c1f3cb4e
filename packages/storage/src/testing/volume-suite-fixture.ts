/**
 * What every case of the Volume suite shares: one store and one cache root for the file, one set of
 * buffer pools, and helpers that open volumes (each with its own id) and look at the store.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import type { ObjectStore } from "../object-store/object-store";
import { ChunkBuffers } from "../volume/chunk-buffers";
import { volumePrefix } from "../volume/chunk-layout";
import { Volume, type VolumeOptions } from "../volume/volume";
import { FaultyObjectStore } from "./faulty-object-store";
import { MemoryChunkIndex } from "./memory-chunk-index";
import { seededBytes } from "./seeded-random";

export interface VolumeSuiteStore {
  /** Called once for the file; the suite closes the store at the end. */
  create(): Promise<ObjectStore>;
  /** Runs after the store is closed (remove temp dirs, stop servers). */
  cleanup?(): Promise<void>;
}

export const KiB = 1024;
export const CHUNK = 64 * KiB;

export interface Setup {
  volumeId: string;
  index: MemoryChunkIndex;
  faulty: FaultyObjectStore;
  /** The cache root every open() uses unless `cacheDir` is overridden. */
  cacheDir: string;
  open(overrides?: Partial<VolumeOptions>): Promise<Volume>;
  /** A new, empty cache root: a reopen with it sees only the bucket (the machine was lost). */
  freshCacheDir(): string;
}

export interface VolumeSuiteFixture {
  /** The file's store (set once the suite's beforeAll ran). */
  readonly store: ObjectStore;
  readonly buffers: ChunkBuffers;
  setup(size?: number): Setup;
  freshCacheDir(): string;
  reopenedCold(s: Setup, seed: number, overrides: Partial<VolumeOptions>, length?: number): Promise<{ reopened: Volume; reference: Buffer }>;
  expectCached(volume: Volume, chunks: number[], reference: Buffer): void;
  keysOf(volumeId: string): Promise<string[]>;
  readAll(volume: Volume, offset?: number, length?: number): Promise<Buffer>;
}

/** Registers the shared beforeAll/afterAll in the calling describe block and returns the helpers. */
export function useVolumeSuiteFixture(name: string, factory: VolumeSuiteStore): VolumeSuiteFixture {
  let store: ObjectStore;
  let volumeCount = 0;
  let cacheRoot: string;
  let cacheDirs = 0;

  beforeAll(async () => {
    store = await factory.create();
    cacheRoot = await mkdtemp(path.join(tmpdir(), "stratus-cache-suite-"));
  });

  afterAll(async () => {
    await store?.close();
    await factory.cleanup?.();
    if (cacheRoot) await rm(cacheRoot, { recursive: true, force: true });
  });

  // One set of buffer pools for every volume of the file, as a gateway shares one, in debug mode:
  // a released buffer is poisoned, and a double release or a write after release throws.
  const buffers = new ChunkBuffers({ debug: true });

  function freshCacheDir(): string {
    return path.join(cacheRoot, `c${++cacheDirs}`);
  }

  function setup(size = 16 * CHUNK): Setup {
    const volumeId = `vol_${name.replace(/\W/g, "")}${++volumeCount}`;
    const index = new MemoryChunkIndex();
    const faulty = new FaultyObjectStore(store);
    const cacheDir = freshCacheDir();
    return {
      volumeId,
      index,
      faulty,
      cacheDir,
      freshCacheDir,
      open: (overrides) => Volume.open({ volumeId, size, chunkSize: CHUNK, store: faulty, index, cacheDir, durability: "cloud", buffers, ...overrides }),
    };
  }

  /**
   * Writes seeded bytes (`length`, default the whole volume), closes, and reopens with an empty
   * cache (with `overrides`): every read of the reopened volume starts as a download.
   */
  async function reopenedCold(s: Setup, seed: number, overrides: Partial<VolumeOptions>, length?: number): Promise<{ reopened: Volume; reference: Buffer }> {
    const volume = await s.open();
    const reference = seededBytes(length ?? volume.size, seed);
    await volume.write(0, reference);
    await volume.close();
    return { reopened: await s.open({ cacheDir: s.freshCacheDir(), ...overrides }), reference };
  }

  /**
   * Each chunk reads back from the cache synchronously (readNow never asks the store). Such a read
   * may continue a sequential reader and start read-ahead of its own: request counts would see it.
   */
  function expectCached(volume: Volume, chunks: number[], reference: Buffer): void {
    for (const chunk of chunks) {
      const target = Buffer.alloc(CHUNK);
      expect(volume.readNow(chunk * CHUNK, target), `chunk ${chunk} cached`).toBe(true);
      expect(target.equals(reference.subarray(chunk * CHUNK, (chunk + 1) * CHUNK))).toBe(true);
    }
  }

  async function keysOf(volumeId: string): Promise<string[]> {
    const keys: string[] = [];
    let startAfter: string | undefined;
    for (;;) {
      const page = await store.list({ prefix: volumePrefix(volumeId), startAfter });
      keys.push(...page.objects.map((o) => o.key));
      if (!page.truncated) return keys;
      startAfter = keys.at(-1);
    }
  }

  async function readAll(volume: Volume, offset = 0, length = volume.size): Promise<Buffer> {
    const target = Buffer.alloc(length, 0xee);
    await volume.read(offset, target);
    return target;
  }

  return {
    get store() {
      return store;
    },
    buffers,
    setup,
    freshCacheDir,
    reopenedCold,
    expectCached,
    keysOf,
    readAll,
  };
}
