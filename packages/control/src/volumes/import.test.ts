/**
 * importVolume, cancelImport and volumeImportProgress against real Postgres/PGlite and Redis, with a
 * local http server as the source. No gateway runs here: the job stays waiting, which is what the
 * verbs must handle on their own (the job's side is e2e/gateway/url-import.test.ts). What matters most:
 * the URL's query and S3 keys reach neither the job payload nor Redis in plain form.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { DATABASE_KINDS } from "@stratus/db/testing";
import { findVolumeById, insertAccount, type UserRow } from "@stratus/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { jobIds } from "../jobs/queues";
import { openTestRuntime, type TestRuntime } from "../testing";
import { cancelImport, importVolume, volumeImportProgress } from "./import";
import { takeImportSource } from "./import-source";

const MiB = 2 ** 20;
/** A qcow2 header for a 3 MiB (+1 sector) disk, as the first 512 bytes of the served file. */
function qcow2Head(virtualSize: number): Buffer {
  const head = Buffer.alloc(512);
  head.writeUInt32BE(0x514649fb, 0);
  head.writeUInt32BE(3, 4);
  head.writeUInt32BE(16, 20);
  head.writeBigUInt64BE(BigInt(virtualSize), 24);
  return head;
}

describe.each(DATABASE_KINDS)("importVolume on %s", (kind) => {
  let t: TestRuntime;
  let alice: UserRow;
  let bob: UserRow;
  let server: http.Server;
  let base: string;
  const files: Record<string, Buffer> = { "/disk.qcow2": Buffer.concat([qcow2Head(3 * MiB + 512), Buffer.alloc(4096)]), "/raw.img": Buffer.alloc(5000, 1) };
  const as = (user: UserRow, scope: "read" | "write" = "write"): ServiceContext => ({ runtime: t.runtime, actor: { userId: user.id, via: "session", scope } });

  beforeAll(async () => {
    t = await openTestRuntime(kind);
    const db = t.runtime.database.db;
    alice = await insertAccount(db, { email: "alice@example.com", passwordHash: "scrypt$x", isAdmin: false });
    bob = await insertAccount(db, { email: "bob@example.com", passwordHash: "scrypt$x", isAdmin: false });
    server = http.createServer((req, res) => {
      const body = files[new URL(req.url!, "http://x").pathname];
      if (!body) return res.writeHead(404).end();
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
      if (!range) return res.writeHead(200, { "content-length": body.length }).end(body);
      const end = Math.min(body.length - 1, Number(range[2]));
      res.writeHead(206, { "content-range": `bytes ${range[1]}-${end}/${body.length}` }).end(body.subarray(Number(range[1]), end + 1));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await t?.dispose();
  });

  it("sizes an importing volume from the image, and keeps the source sealed out of the job", async () => {
    const url = `${base}/disk.qcow2?X-Amz-Signature=very-secret`;
    const started = await importVolume(as(alice), { name: "from-qcow2", url });
    expect(started).toMatchObject({ format: "qcow2", source: `${base}/disk.qcow2?…`, volume: { state: "importing", sizeBytes: 3 * MiB + 512 } });
    const job = await t.runtime.queues.importVolume.getJob(started.jobId);
    expect(job?.data).toEqual({ volumeId: started.volume.id });
    const keys = await t.runtime.redis.keys(`${t.runtime.config.prefix}:import-source:*`);
    expect(keys).toHaveLength(1);
    expect(await t.runtime.redis.get(keys[0]!)).not.toContain("very-secret");
    expect(await volumeImportProgress(as(alice), { name: "from-qcow2" })).toMatchObject({ state: "waiting" });
    // Another user sees no such import.
    await expect(volumeImportProgress(as(bob), { name: "from-qcow2" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    // The worker's read opens it once, for this volume only.
    const { prefix } = t.runtime.config;
    expect(await takeImportSource(t.runtime.redis, prefix, t.runtime.masterKey.key, started.volume.id)).toEqual({ kind: "url", url });
    expect(await takeImportSource(t.runtime.redis, prefix, t.runtime.masterKey.key, started.volume.id)).toBeUndefined();
  });

  it("rounds a raw image up to whole sectors; refuses what it cannot read without making a volume", async () => {
    expect((await importVolume(as(alice), { name: "from-raw", url: `${base}/raw.img` })).volume.sizeBytes).toBe(5120);
    for (const [url, message] of [
      [`${base}/missing.img`, /answered 404/],
      ["ftp://example.com/x.img", /an http\(s\) URL or s3:\/\/bucket\/key/],
    ] as const) {
      const refused = importVolume(as(alice), { name: "refused", url });
      await expect(refused).rejects.toBeInstanceOf(ServiceError);
      await expect(refused).rejects.toMatchObject({ code: "BAD_REQUEST", field: "url", message: expect.stringMatching(message) });
    }
    await expect(importVolume(as(alice, "read"), { name: "read-only", url: `${base}/raw.img` })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(volumeImportProgress(as(alice), { name: "refused" })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("cancels a waiting import: the volume is marked deleting, its delete queued and the job dropped", async () => {
    const started = await importVolume(as(alice), { name: "to-cancel", url: `${base}/raw.img` });
    await expect(cancelImport(as(bob), { name: "to-cancel" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await cancelImport(as(alice), { name: "to-cancel" });
    expect((await findVolumeById(t.runtime.database.db, started.volume.id))?.state).toBe("deleting");
    expect(await t.runtime.queues.importVolume.getJob(started.jobId)).toBeUndefined();
    expect(await t.runtime.queues.deleteVolume.getJob(jobIds.deleteVolume({ volumeId: started.volume.id }))).toBeDefined();
    expect(await volumeImportProgress(as(alice), { name: "to-cancel" })).toMatchObject({ state: "cancelled" });
    await expect(cancelImport(as(alice), { name: "to-cancel" })).rejects.toMatchObject({ code: "CONFLICT" });
  });
});
