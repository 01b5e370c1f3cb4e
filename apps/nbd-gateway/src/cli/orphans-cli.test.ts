/**
 * `stratus orphans export` with the REST layer faked: the image comes from this machine's data directory
 * when the holding gateway runs here, else from the server's download (written sparse), else the error
 * names the gateway. The folder is a real one the storage engine left.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { ORPHANS_FOLDER } from "@stratus/control";
import { CacheBudget, dirtyImageStream, MemoryObjectStore, Volume } from "@stratus/storage";
import { MemoryChunkIndex } from "@stratus/storage/testing";
import { afterAll, describe, expect, it } from "vitest";
import type { ApiClient } from "./api-client";
import { exportOrphanSetToFile, writeSparse } from "./orphans-cli";

const MiB = 2 ** 20;
const SIZE = 64 * MiB;
const root = mkdtempSync(path.join(tmpdir(), "stratus-orphans-cli-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const DIR_NAME = "vol_11111111111111111111-3";
const detail = (exportable: boolean) => ({
  id: "orp_11111111111111111111",
  volumeId: "vol_11111111111111111111",
  volumeName: "disk",
  gatewayId: "gw-far",
  fencingToken: 3,
  bytes: MiB,
  dirtyChunks: 1,
  reason: "another holder took its lease",
  orphanedAt: new Date().toISOString(),
  lastExportedAt: null,
  exportable,
  exportCommand: "",
  sizeBytes: SIZE,
  chunkSize: MiB,
  dirName: DIR_NAME,
});

/** An orphan folder as a fenced engine leaves it, chunk 40 written and never committed. */
async function orphanFolder(dataDir: string): Promise<{ dir: string; expected: Buffer }> {
  const parent = path.join(dataDir, "cache", ORPHANS_FOLDER);
  mkdirSync(parent, { recursive: true });
  const volume = await Volume.open({
    volumeId: DIR_NAME,
    size: SIZE,
    chunkSize: MiB,
    store: new MemoryObjectStore(),
    index: new MemoryChunkIndex(),
    cacheDir: parent,
    cacheBudget: new CacheBudget({ targetBytes: SIZE, dirtyLimitBytes: SIZE }),
    durability: "local",
    commitIntervalMs: 3_600_000,
  });
  const expected = Buffer.alloc(SIZE);
  expected.fill(0xab, 40 * MiB + 4096, 40 * MiB + 12_288);
  await volume.write(40 * MiB + 4096, expected.subarray(40 * MiB + 4096, 40 * MiB + 12_288));
  await volume.flush();
  volume.abandon();
  const dir = path.join(parent, DIR_NAME);
  writeFileSync(path.join(dir, "orphan.json"), JSON.stringify({ volumeId: "vol_11111111111111111111", fencingToken: 3 }));
  return { dir, expected };
}

function fakeClient(dataDir: string, exportable: boolean, image?: () => Readable): ApiClient {
  return {
    dataDir,
    request: async () => detail(exportable),
    download: async () => new Response(Readable.toWeb(image!()) as ReadableStream<Uint8Array>),
  } as unknown as ApiClient;
}

describe("stratus orphans export", () => {
  it("reads the set from this machine's data directory when its gateway runs here", async () => {
    const dataDir = path.join(root, "here");
    const { expected } = await orphanFolder(dataDir);
    const out = path.join(root, "local.img");
    expect((await exportOrphanSetToFile(fakeClient(dataDir, false), "orp_11111111111111111111", out)).from).toBe("local");
    expect(readFileSync(out).equals(expected)).toBe(true);
    expect(statSync(out).blocks * 512).toBeLessThan(4 * MiB); // sparse: 64 MiB long, one chunk of data
  });

  it("downloads it from the server whose gateway holds it, written sparse", async () => {
    const far = path.join(root, "far");
    const { dir, expected } = await orphanFolder(far);
    const out = path.join(root, "downloaded.img");
    const client = fakeClient(path.join(root, "elsewhere"), true, () => dirtyImageStream(dir, { sizeBytes: SIZE, chunkSize: MiB }));
    expect((await exportOrphanSetToFile(client, "orp_11111111111111111111", out)).from).toBe("server");
    expect(readFileSync(out).equals(expected)).toBe(true);
    expect(statSync(out).blocks * 512).toBeLessThan(4 * MiB);
    expect(statSync(out).mode & 0o777).toBe(0o600);
  });

  it("names the gateway to run it on when neither has it, and refuses a short download", async () => {
    await expect(exportOrphanSetToFile(fakeClient(path.join(root, "none"), false), "orp_11111111111111111111", path.join(root, "x.img"))).rejects.toThrow(
      "orphan set orp_11111111111111111111 is on the disk of gateway gw-far: run this command on that gateway's host",
    );
    await expect(writeSparse(Readable.from([Buffer.alloc(10, 1)]), path.join(root, "short.img"), 20)).rejects.toThrow("ended after 10 of 20 bytes");
  });
});
