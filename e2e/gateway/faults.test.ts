/**
 * Issue 3, acceptance 3: an object store that fails. The gateway's bucket is an S3 server (s3rver)
 * behind the fault proxy (@stratus/storage/testing), which answers a share of requests with
 * 503 SlowDown or a reset connection, or all of them during an outage. Real clients (nbdcopy) and
 * the socket-level NBD client see what a user would.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { FaultProxy } from "@stratus/storage/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectNbd,
  createVolume,
  findVolume,
  makeSparseImage,
  MiB,
  NbdRequestError,
  runOk,
  seededBytes,
  sha256File,
  startProxiedGateway,
  waitFor,
  waitForCommitted,
  type Gateway,
  type ProxiedGateway,
} from "../harness";

const DIRTY_LIMIT = 4 * MiB;

let stack: ProxiedGateway;
let proxy: FaultProxy;
let gateway: Gateway;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-faults-"));
  stack = await startProxiedGateway({ seed: 11, env: { STRATUS_DIRTY_LIMIT: "4M", STRATUS_CACHE_SIZE: "64M", STRATUS_COMMIT_INTERVAL: "500ms" } });
  ({ proxy, gateway } = stack);
});

afterAll(async () => {
  await stack?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const withLogs = <T>(body: () => Promise<T>): Promise<T> => stack.withLogs(body);

/** Stops the gateway gracefully and drops its local cache, so every read after the start is a miss. */
async function restartCold(): Promise<void> {
  await gateway.stop();
  await rm(path.join(gateway.dataDir, "cache"), { recursive: true, force: true });
  await gateway.restart();
}

async function waitCommitted(name: string): Promise<void> {
  await waitForCommitted(gateway, name);
}

describe("an object store that fails, stalls and goes away", () => {
  it("20% of requests failing (503 SlowDown and resets): nbdcopy in and out sees no error and the data is all there", () =>
    withLogs(async () => {
      await createVolume(gateway, "flaky", { size: "64M", chunkSize: "256K", durability: "cloud" });
      const image = await makeSparseImage(path.join(work, "flaky.img"), { size: 64 * MiB, seed: 5, dataFraction: 0.6, maxRunMiB: 4 });
      const expected = await sha256File(image.path);

      proxy.resetStats();
      proxy.setMode({ failRate: 0.2, failure: "mixed" });
      // durability=cloud: nbdcopy's final FLUSH returns only after the commit, through the failures.
      await runOk("nbdcopy", ["--flush", image.path, gateway.uri("flaky")], { timeoutMs: 240_000 });
      await waitCommitted("flaky");

      // Read it all back from the bucket (empty cache), still failing 20% of requests.
      await restartCold();
      const out = path.join(work, "flaky.out");
      await runOk("nbdcopy", [gateway.uri("flaky"), out], { timeoutMs: 240_000 });
      expect(await sha256File(out)).toBe(expected);

      const stats = proxy.stats();
      proxy.setMode({ failRate: 0 });
      expect(stats.injected.slowDown).toBeGreaterThan(0);
      expect(stats.injected.reset).toBeGreaterThan(0);
      expect(stats.forwarded.PUT).toBeGreaterThan(0);
      expect(stats.forwarded.GET).toBeGreaterThan(0);
      console.log("20% failures:", { requests: stats.requests, injected: stats.injected });
    }));

  it("an outage longer than the dirty limit: writes wait, uncached reads fail with EIO, both recover without a restart", () =>
    withLogs(async () => {
      // A volume whose data lives only in the bucket once the cache is dropped.
      await createVolume(gateway, "cold", { size: "16M", chunkSize: "256K" });
      await createVolume(gateway, "hot", { size: "32M", chunkSize: "256K" });
      const coldData = seededBytes(21)(8 * MiB);
      const seed = await connectNbd(gateway.nbdPort, "cold");
      for (let offset = 0; offset < coldData.length; offset += MiB) await seed.write(offset, coldData.subarray(offset, offset + MiB));
      await seed.flush();
      await seed.close();
      await waitCommitted("cold");
      await restartCold();

      const cold = await connectNbd(gateway.nbdPort, "cold");
      const hot = await connectNbd(gateway.nbdPort, "hot");
      proxy.setMode({ outage: true, failure: "503" });

      // 24 MiB of writes, 6x the dirty limit, 4 in flight: they must wait, not fail.
      const hotData = seededBytes(22)(24 * MiB);
      let acked = 0;
      const failures: unknown[] = [];
      const offsets = Array.from({ length: 24 }, (_, i) => i * MiB);
      const writer = async () => {
        for (let offset = offsets.shift(); offset !== undefined; offset = offsets.shift()) {
          await hot.write(offset, hotData.subarray(offset, offset + MiB)).then(
            () => (acked += MiB),
            (error: unknown) => failures.push(error),
          );
        }
      };
      const writes = Promise.all(Array.from({ length: 4 }, writer));
      await waitFor(
        "writes to wait behind the dirty limit",
        async () => (hot.inFlight > 0 && ((await findVolume(gateway, "hot")).dirtyBytes ?? 0) >= DIRTY_LIMIT / 2 ? true : undefined),
        { timeoutMs: 60_000, intervalMs: 200 },
      );

      // An uncached read during the outage fails with EIO after the retries give up, not never.
      const started = Date.now();
      const read = await cold.read(0, 64 * 1024).then(
        () => undefined,
        (error: unknown) => error,
      );
      const readFailedAfterMs = Date.now() - started;
      expect(read).toBeInstanceOf(NbdRequestError);
      expect((read as NbdRequestError).errno).toBe(5); // EIO
      expect(readFailedAfterMs).toBeLessThan(120_000); // the retrying store's bound (60 s total by default)

      // Still waiting, nothing failed, and far from everything acknowledged.
      expect(failures).toEqual([]);
      expect(acked).toBeLessThan(hotData.length);
      const ackedDuringOutage = acked;

      proxy.setMode({ outage: false });
      await writes;
      expect(failures).toEqual([]);
      await hot.flush();
      expect((await hot.read(0, hotData.length)).equals(hotData)).toBe(true);
      expect((await cold.read(0, coldData.length)).equals(coldData)).toBe(true);
      await waitCommitted("hot");
      await hot.close();
      await cold.close();
      console.log(`outage: uncached read failed with EIO after ${readFailedAfterMs} ms; ${ackedDuringOutage / MiB} MiB acknowledged during the outage`);
    }));
});
