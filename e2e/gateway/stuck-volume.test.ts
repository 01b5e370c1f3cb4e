/**
 * One volume that cannot commit (the bucket refuses its keys) must not stall writes to the others:
 * its dirty bytes stop at STRATUS_VOLUME_DIRTY_LIMIT, below the gateway's STRATUS_DIRTY_LIMIT, so a
 * second volume still has room. Once the bucket takes the stuck volume's keys again, its writer
 * finishes too, and both read back from the bucket alone.
 */
import { rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVolume, makeSparseImage, run, runOk, sha256File, startProxiedGateway, type ProxiedGateway } from "../harness";

const MiB = 1024 * 1024;

describe("a volume whose commits keep failing", () => {
  let stack: ProxiedGateway;
  beforeAll(async () => {
    stack = await startProxiedGateway({
      env: { STRATUS_DIRTY_LIMIT: "32M", STRATUS_VOLUME_DIRTY_LIMIT: "16M", STRATUS_CACHE_SIZE: "256M", STRATUS_COMMIT_IDLE: "200ms" },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it(
    "leaves the other volumes room to write, and catches up once its commits work",
    () =>
      stack.withLogs(async () => {
        const { gateway, proxy } = stack;
        const stuck = await createVolume(gateway, "stuck", { size: "128M", chunkSize: "1M" });
        await createVolume(gateway, "good", { size: "128M", chunkSize: "1M" });
        const stuckImage = await makeSparseImage(path.join(gateway.dataDir, "stuck.img"), { size: 48 * MiB, seed: 21, dataFraction: 1 });
        const goodImage = await makeSparseImage(path.join(gateway.dataDir, "good.img"), { size: 48 * MiB, seed: 22, dataFraction: 1 });

        // The stuck volume's writer wants more than the whole gateway's dirty limit.
        proxy.setMode({ failPathIncludes: `/vol/${stuck.id}/`, failure: "503" });
        const stuckCopy = run("nbdcopy", ["--flush", stuckImage.path, gateway.uri("stuck")], { timeoutMs: 300_000 });

        // Meanwhile another volume writes and flushes all of its data.
        await runOk("nbdcopy", ["--flush", goodImage.path, gateway.uri("good")], { timeoutMs: 120_000 });

        proxy.setMode({ failPathIncludes: undefined });
        const stuckResult = await stuckCopy;
        expect(stuckResult.code, stuckResult.stderr).toBe(0);

        // Both from the bucket alone.
        await gateway.stop();
        await rm(path.join(gateway.dataDir, "cache"), { recursive: true, force: true });
        await gateway.restart();
        for (const [name, image] of [
          ["stuck", stuckImage],
          ["good", goodImage],
        ] as const) {
          const out = path.join(gateway.dataDir, `${name}.out`);
          await runOk("nbdcopy", [gateway.uri(name), out], { timeoutMs: 120_000 });
          await runOk("truncate", ["-s", String(image.size), out]);
          expect(await sha256File(out), name).toBe(await sha256File(image.path));
        }
      }),
    400_000,
  );
});
