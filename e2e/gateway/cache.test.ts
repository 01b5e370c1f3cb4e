/**
 * Issue 3, acceptance 5: the gateway's local disk cache under <dataDir>/cache. The bucket is an S3
 * server behind the fault proxy in pass-through mode, which counts the requests that reach it.
 * - A restart keeps the warm cache: reading a cached volume after a graceful restart sends no GET.
 * - A volume 4x larger than STRATUS_CACHE_SIZE is written and read back correctly (nbdcopy in and
 *   out), and the cache folder never grows past the target plus one dirty limit.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { FaultProxy } from "@stratus/storage/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectNbd,
  createVolume,
  folderUsage,
  makeSparseImage,
  MiB,
  runOk,
  seededBytes,
  sha256File,
  startProxiedGateway,
  waitForCommitted,
  type Gateway,
  type ProxiedGateway,
} from "../harness";

const CACHE_SIZE = 16 * MiB;
const DIRTY_LIMIT = 4 * MiB;
/** The journal, its snapshot and a few spare chunk files are not cached data. */
const METADATA_SLACK = 1 * MiB;

let stack: ProxiedGateway;
let proxy: FaultProxy;
let gateway: Gateway;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-cache-"));
  stack = await startProxiedGateway({ env: { STRATUS_CACHE_SIZE: "16M", STRATUS_DIRTY_LIMIT: "4M", STRATUS_COMMIT_INTERVAL: "500ms" } });
  ({ proxy, gateway } = stack);
});

afterAll(async () => {
  await stack?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const withLogs = <T>(body: () => Promise<T>): Promise<T> => stack.withLogs(body);

const cacheDir = () => path.join(gateway.dataDir, "cache");

async function waitCommitted(name: string): Promise<void> {
  await waitForCommitted(gateway, name);
}

describe("the local disk cache", () => {
  it("a graceful restart keeps the warm cache: reading it again sends no GET to the bucket", () =>
    withLogs(async () => {
      await createVolume(gateway, "warm", { size: "8M", chunkSize: "256K" });
      const data = seededBytes(41)(8 * MiB);
      const writer = await connectNbd(gateway.nbdPort, "warm");
      await writer.write(0, data);
      await writer.flush();
      await writer.close();
      await waitCommitted("warm");

      await gateway.restart();
      proxy.resetStats();
      const reader = await connectNbd(gateway.nbdPort, "warm");
      expect((await reader.read(0, data.length)).equals(data)).toBe(true);
      await reader.close();
      expect(proxy.stats().requests.GET).toBe(0);
    }));

  it("a volume 4x the cache target is written and read back; the cache stays within target + one dirty limit", () =>
    withLogs(async () => {
      await createVolume(gateway, "big", { size: "64M", chunkSize: "256K" });
      const image = await makeSparseImage(path.join(work, "big.img"), { size: 64 * MiB, seed: 42, dataFraction: 1 });
      const expected = await sha256File(image.path);

      // Sample the cache folder's size all through the copy in and out.
      let peak = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, (await folderUsage(cacheDir())).bytes);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      try {
        proxy.resetStats();
        await runOk("nbdcopy", ["--flush", image.path, gateway.uri("big")], { timeoutMs: 240_000 });
        await waitCommitted("big");
        const out = path.join(work, "big.out");
        await runOk("nbdcopy", [gateway.uri("big"), out], { timeoutMs: 240_000 });
        expect(await sha256File(out)).toBe(expected);
      } finally {
        sampling = false;
        await sampler;
      }
      const after = (await folderUsage(cacheDir())).bytes;
      const bound = CACHE_SIZE + DIRTY_LIMIT + METADATA_SLACK;
      // The target is shared by every volume of the gateway (the contract's one CacheBudget), closed ones too.
      const perVolume = await Promise.all(
        (await readdir(cacheDir())).map(async (id) => `${id}: ${((await folderUsage(path.join(cacheDir(), id))).bytes / MiB).toFixed(1)} MiB`),
      );
      const summary = `cache: peak ${(peak / MiB).toFixed(1)} MiB, after ${(after / MiB).toFixed(1)} MiB (${perVolume.join(", ")}), bound ${bound / MiB} MiB`;
      console.log(summary, proxy.stats().requests);
      expect(peak, summary).toBeLessThanOrEqual(bound);
      expect(after, summary).toBeLessThanOrEqual(bound);
      // The read-back could not come from the cache alone: most of it was fetched again.
      expect(proxy.stats().requests.GET).toBeGreaterThan(0);
    }));
});
