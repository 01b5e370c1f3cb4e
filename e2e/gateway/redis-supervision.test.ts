/**
 * The embedded default's private redis-server killed under a running gateway, twice, while a client
 * copies a `cloud` volume (each FLUSH waits for the commit, whose uploads are BullMQ jobs): the server
 * comes back, the lost jobs are queued again, the copy completes, and the bucket alone reads back
 * every byte.
 */
import { readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createVolume, describeLogs, makeSparseImage, runOk, sha256File, startGateway, waitFor, type Gateway } from "../harness";

const MiB = 1024 * 1024;

async function objectCount(bucketDir: string): Promise<number> {
  const entries = await readdir(bucketDir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).length;
}

describe("the private redis-server dies under a running gateway", () => {
  let gateway: Gateway | undefined;
  afterAll(async () => {
    await gateway?.dispose();
  });

  it("is started again, uploads resume, and every flushed byte reaches the bucket", async () => {
    // Write-behind off: every chunk of a commit is uploaded as a BullMQ job, none ahead in-process.
    gateway = await startGateway({ env: { STRATUS_UPLOAD_CONCURRENCY: "2", STRATUS_WRITE_BEHIND: "false" } });
    const g = gateway;
    try {
      await createVolume(g, "disk", { size: "256M", chunkSize: "1M", durability: "cloud" });
      const image = await makeSparseImage(path.join(g.dataDir, "source.img"), { size: 160 * MiB, seed: 11, dataFraction: 1 });
      const redisPid = async () => Number((await readFile(path.join(g.dataDir, "redis.pid"), "utf8")).split("\n")[0]);
      const restarts = () => g.logs().filter((line) => line.msg === "private redis-server restarted").length;

      const copy = runOk("nbdcopy", ["--flush", "--requests=16", image.path, g.uri("disk")], { timeoutMs: 240_000 });
      let copied = false;
      void copy.then(
        () => (copied = true),
        () => undefined,
      );
      for (let kill = 1; kill <= 2; kill++) {
        // Kill once more chunk objects have landed since the last kill: uploads are under way, so
        // jobs are queued in the server that dies (unless the copy is already done).
        const before = await objectCount(g.bucketDir);
        await waitFor(`uploads before kill ${kill}`, async () => (copied || (await objectCount(g.bucketDir)) >= before + 8 ? true : undefined), {
          timeoutMs: 120_000,
          intervalMs: 20,
        });
        const pid = await redisPid();
        process.kill(pid, "SIGKILL");
        await waitFor(`redis-server restart ${kill}`, () => (restarts() >= kill ? true : undefined), { timeoutMs: 30_000, intervalMs: 50 });
        expect(await redisPid()).not.toBe(pid);
      }
      await copy;
      expect(copied).toBe(true);
      expect(g.logs().some((l) => l.msg === "Redis was restarted empty: queueing the pending uploads again")).toBe(true);
      // Every Redis client reports its connection errors through the log, none raw on stderr.
      expect(g.logs().filter((l) => String(l.msg).includes("Unhandled error event"))).toEqual([]);

      // The bucket alone: stop, drop the cache, start, read everything back.
      await g.stop();
      await rm(path.join(g.dataDir, "cache"), { recursive: true, force: true });
      await g.restart();
      const out = path.join(g.dataDir, "readback.img");
      await runOk("nbdcopy", [g.uri("disk"), out], { timeoutMs: 240_000 });
      await runOk("truncate", ["-s", String(image.size), out]);
      expect(await sha256File(out)).toBe(await sha256File(image.path));
    } catch (error) {
      if (error instanceof Error) error.message += `\n${describeLogs(g.logs())}`;
      throw error;
    }
  }, 400_000);
});
