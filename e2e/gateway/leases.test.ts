/**
 * Two gateway processes on one PostgreSQL and one S3 bucket, one volume: while fio writes and verifies
 * through gateway 1, nbdinfo and nbdinfo --list probe it through both gateways and steal nothing (the
 * fencing token stays); gateway 2's client asking to attach it is refused with the holder's name; once
 * the holder has detached, gateway 2 attaches and reads every flushed byte.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { findLiveLease, findVolumeById, type Database } from "@stratus/db";
import { createTestDatabase, type TestDatabase } from "@stratus/db/testing";
import { startS3TestServer, type S3TestServer } from "@stratus/storage/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CleanupStack, createVolume, describeLogs, MiB, run, runFio, runOk, s3GatewayEnv, startGateway, waitFor, type Gateway } from "../harness";

const cleanup = new CleanupStack();
let work: string;
let fixture: TestDatabase;
let database: Database;
let s3: S3TestServer;
let gateway1: Gateway;
let gateway2: Gateway;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-leases-"));
  cleanup.push("remove the work folder", () => rm(work, { recursive: true, force: true }));
  fixture = await createTestDatabase("postgres");
  cleanup.push("drop the database", () => fixture.dispose());
  database = await fixture.open();
  cleanup.push("close the database", () => database.close());
  s3 = await startS3TestServer({ bucket: "stratus-e2e-leases" });
  cleanup.push("stop the S3 server", () => s3.stop());
  // One deployment: the same database, bucket and master key; each gateway its own data dir,
  // private Redis and upload queues.
  const shared = {
    ...s3GatewayEnv(s3),
    DATABASE_URL: (fixture.options as { url: string }).url,
    STRATUS_MASTER_KEY: randomBytes(32).toString("base64"),
    STRATUS_CACHE_SIZE: "256M",
    STRATUS_DIRTY_LIMIT: "64M",
  };
  [gateway1, gateway2] = await Promise.all([
    startGateway({ env: { ...shared, STRATUS_GATEWAY_ID: "gw-one" } }),
    // Private Redis each: no lease channel between them, so a handoff request goes unheard and ends at the timeout.
    startGateway({ env: { ...shared, STRATUS_GATEWAY_ID: "gw-two", STRATUS_HANDOFF_TIMEOUT: "2s" }, args: ["--no-web"] }),
  ]);
  cleanup.push("stop gateway 1", () => gateway1.dispose());
  cleanup.push("stop gateway 2", () => gateway2.dispose());
}, 120_000);

afterAll(() => cleanup.runAll(), 60_000);

async function withLogs<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof Error) err.message += `\n--- gateway 1\n${describeLogs(gateway1.logs())}\n--- gateway 2\n${describeLogs(gateway2.logs())}`;
    throw err;
  }
}

describe("leases across two gateways", () => {
  it("INFO and LIST steal nothing, another gateway is refused, and it attaches once the holder detached", () =>
    withLogs(async () => {
      const created = await createVolume(gateway1, "held", { size: "64M", chunkSize: "1M" });
      const tokenOf = async () => (await findVolumeById(database.db, created.id))!.fencingToken;
      const server = (gateway: Gateway) => `nbd://127.0.0.1:${gateway.nbdPort}`;

      // One more connection of the same device holds the volume for the whole check, so the lease
      // (and its token) is the same from the first probe to the last.
      const holder = spawn("nbdsh", ["-c", `h.connect_uri(${JSON.stringify(gateway1.uri("held"))})\nimport sys\nsys.stdin.read()`], {
        stdio: ["pipe", "ignore", "inherit"],
        env: { ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ""}` },
      });
      const holderExited = new Promise((resolve) => holder.once("close", resolve));
      await waitFor("the holder to attach", async () => (await findLiveLease(database.db, created.id, new Date())) ?? undefined, { timeoutMs: 20_000 });
      const token = await tokenOf();

      // (b) While gateway 1 holds it, gateway 2's client is refused, told who holds it and since when.
      // libnbd shows the server's message only in its debug output.
      const refused = await run("nbdinfo", [gateway2.uri("held")], { timeoutMs: 20_000, env: { ...process.env, LIBNBD_DEBUG: "1" } });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/in use by local through gateway gw-one since .*: it did not hand over within 2s/);

      // (a) fio writes and verifies through gateway 1 while 50 probes ask about the volume.
      const fio = runFio(
        [
          "--name=verify-under-probes",
          "--ioengine=nbd",
          `--uri=${gateway1.uri("held")}`,
          "--rw=randwrite",
          "--bs=4k",
          "--iodepth=16",
          "--size=32M",
          "--verify=crc32c",
          "--do_verify=1",
          "--verify_fatal=1",
          "--randseed=22",
        ],
        path.join(work, "fio.json"),
        120_000,
      );
      const probes: Array<[string, string[]]> = [
        // The holder's own device on its gateway: it shares the engine.
        ["nbdinfo", [gateway1.uri("held")]],
        ["nbdinfo", ["--list", server(gateway1)]],
        // Another gateway lists and describes it (NBD_OPT_INFO) without taking anything.
        ["nbdinfo", ["--list", server(gateway2)]],
      ];
      for (let probe = 0; probe < 50; probe++) {
        const [cmd, args] = probes[probe % probes.length]!;
        expect(await runOk(cmd, args, { timeoutMs: 20_000 })).toContain("held");
      }
      const [job] = await fio;
      expect(job!.error).toBe(0);
      expect(job!.read.io_bytes).toBe(32 * MiB);
      expect(await tokenOf()).toBe(token);
      expect(await findLiveLease(database.db, created.id, new Date())).toMatchObject({ gatewayId: "gw-one", fencingToken: token });

      holder.stdin.end();
      await holderExited;
      // (c) Gateway 1's last client left: its final commit, then the lease goes; gateway 2 reads every byte.
      await runOk("nbdcopy", [gateway1.uri("held"), path.join(work, "via-1.img")], { timeoutMs: 60_000 });
      await waitFor(
        "gateway 1 to release the lease",
        async () => ((await findLiveLease(database.db, created.id, new Date())) === undefined ? true : undefined),
        {
          timeoutMs: 20_000,
        },
      );
      await runOk("nbdcopy", [gateway2.uri("held"), path.join(work, "via-2.img")], { timeoutMs: 60_000 });
      expect((await readFile(path.join(work, "via-2.img"))).equals(await readFile(path.join(work, "via-1.img")))).toBe(true);
      expect(await tokenOf()).toBeGreaterThan(token);
    }));
});
