/**
 * The gateway end to end with its durability stack: real PostgreSQL, real Redis (a unique queue prefix),
 * the directory bucket, the private key handling, and a real NBD client (nbdsh). One scripted session:
 * create a passphrase-only volume, write and overwrite through NBD, change the passphrase, restart
 * (the volume is locked), fail to unlock with a wrong and the old passphrase, unlock, read back, let GC
 * run, delete — then grep logs, Redis and every database column for the secrets.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import {
  changeVolumePassphrase,
  createVolume,
  deleteVolume,
  HTTP_STATUS,
  isServiceError,
  lockVolume,
  recoverVolumes,
  unlockVolume,
  volumeDeleteProgress,
  type ServiceContext,
} from "@stratus/control";
import { loadChunkMap, executeRows, listVolumeActivityRows, type Database } from "@stratus/db";
import { createTestDatabase, type TestDatabase } from "@stratus/db/testing";
import { chunkKey, chunkPrefix, DirectoryObjectStore, volumePrefix } from "@stratus/storage";
import { sql } from "drizzle-orm";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadGatewayConfig } from "../config/env";
import { NBD_CMD_READ } from "../protocol/constants";
import { nbdsh, run, waitFor } from "../testing/nbd-tools";
import { RawNbdClient } from "../testing/raw-nbd-client";
import { deletePrefix, dumpPrefix, uniqueQueuePrefix } from "../testing/test-redis";
import { startGateway, type RunningGateway } from "./start";

const PASS1 = "correct horse battery staple 41";
const PASS2 = "tr0ub4dor&3 second passphrase";
const KiB = 1024;
const CHUNK = 64 * KiB;

describe("gateway durability session", () => {
  let dataDir: string;
  let fixture: TestDatabase;
  let database: Database;
  let prefix: string;
  let gateway: RunningGateway | undefined;
  const logs: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString("utf8"));
      done();
    },
  });

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "stratus-durability-"));
    fixture = await createTestDatabase("postgres");
    database = await fixture.open();
    prefix = uniqueQueuePrefix();
  });
  afterAll(async () => {
    await gateway?.stop();
    await deletePrefix(prefix);
    await fixture?.dispose();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function start(databaseFixture: TestDatabase = fixture): Promise<RunningGateway> {
    const url = (databaseFixture.options as { url: string }).url;
    const config = loadGatewayConfig({
      STRATUS_DATA_DIR: dataDir,
      STRATUS_NBD_PORT: "0",
      STRATUS_WEB_PORT: "0",
      DATABASE_URL: url,
      REDIS_URL: "redis://127.0.0.1:6379",
      STRATUS_QUEUE_PREFIX: prefix,
      STRATUS_GC_GRACE: "0",
      STRATUS_CACHE_SIZE: "64M",
      STRATUS_DIRTY_LIMIT: "16M",
      STRATUS_LOG_LEVEL: "debug",
    });
    gateway = await startGateway(config, pino({ level: "debug" }, logStream), { kdf: { N: 1024 }, web: false });
    return gateway;
  }

  async function stopGateway(): Promise<void> {
    const running = gateway;
    gateway = undefined;
    await running?.stop();
  }

  /**
   * The REST routes now live in the Next app; this test drives the same verbs in-process as the local
   * admin (what the CLI token stands for), with REST's status codes.
   */
  async function api<T>(method: string, route: string, body: Record<string, unknown> = {}): Promise<{ status: number; json: T }> {
    const ctx: ServiceContext = { runtime: gateway!.runtime, actor: { userId: gateway!.localAdminId, via: "local", scope: "write" } };
    const name = /^\/api\/v1\/volumes\/([^/]+)/.exec(route)?.[1];
    const calls: Record<string, () => Promise<unknown>> = {
      "POST /api/v1/volumes": () => createVolume(ctx, body as never),
      [`POST /api/v1/volumes/${name}/passphrase`]: () => changeVolumePassphrase(ctx, { ...body, name } as never),
      [`POST /api/v1/volumes/${name}/unlock`]: () => unlockVolume(ctx, { ...body, name } as never),
      [`POST /api/v1/volumes/${name}/lock`]: () => lockVolume(ctx, { name: name! }),
      [`DELETE /api/v1/volumes/${name}`]: () => deleteVolume(ctx, { name: name! }),
      [`GET /api/v1/volumes/${name}/delete-progress`]: () => volumeDeleteProgress(ctx, { name: name! }),
      "POST /api/v1/recover": () => recoverVolumes(ctx, body as never),
    };
    const call = calls[`${method} ${route}`];
    if (!call) throw new Error(`no route ${method} ${route} in this test`);
    try {
      const json = (await call()) as T;
      return { status: method === "POST" && route === "/api/v1/volumes" ? 201 : method === "DELETE" ? 202 : 200, json };
    } catch (error) {
      if (!isServiceError(error)) throw error;
      return { status: HTTP_STATUS[error.code], json: { error: { code: error.code, message: error.message } } as T };
    }
  }

  const bucket = () => new DirectoryObjectStore(path.join(dataDir, "bucket"));
  async function objects(prefixKey: string): Promise<Map<string, string>> {
    const store = bucket();
    const out = new Map<string, string>();
    for (const object of (await store.list({ prefix: prefixKey, limit: 100_000 })).objects) {
      const body = await store.get(object.key);
      if (body) out.set(object.key, createHash("sha256").update(body).digest("hex")); // else: just deleted by GC
    }
    return out;
  }

  it("create, write, passwd, lock, unlock, GC and delete without a secret in logs, Redis or the database", async () => {
    await start();
    const created = await api<{ id: string; hasPassphrase: boolean; autoUnlock: boolean }>("POST", "/api/v1/volumes", {
      name: "secret",
      size: "4M",
      chunkSize: CHUNK,
      durability: "cloud",
      passphrase: PASS1,
      autoUnlock: false,
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ hasPassphrase: true, autoUnlock: false });
    const volumeId = created.json.id;
    const uri = `${gateway!.nbdUrl}/secret`;

    // Overwrite-heavy work: chunks 0-7 rewritten five times, a FLUSH after each round (durability cloud:
    // each flush is a commit), then one chunk trimmed.
    await nbdsh<number>(
      uri,
      `
for round in range(5):
    for chunk in range(8):
        h.pwrite(bytes([65 + round]) * ${CHUNK}, chunk * ${CHUNK})
    h.flush()
h.pwrite(b"STRATUS-MARKER-PLAINTEXT" * 100, 9 * ${CHUNK})
h.trim(${CHUNK}, 7 * ${CHUNK})
h.flush()
print(json.dumps(0))`,
    );
    // The GC (no grace) runs after the last connection closed: exactly the referenced generations stay.
    const map = await loadChunkMap(database.db, volumeId);
    const referenced = [...map.chunks].map(([index, ref]) => chunkKey(volumeId, index, ref.generation)).sort();
    for (let i = 0; i < 500 && JSON.stringify([...(await objects(chunkPrefix(volumeId))).keys()].sort()) !== JSON.stringify(referenced); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect([...(await objects(chunkPrefix(volumeId))).keys()].sort()).toEqual(referenced);
    expect(referenced).toHaveLength(8); // chunks 0-6 and 9

    const chunksBefore = await objects(chunkPrefix(volumeId));
    expect(chunksBefore.size).toBeGreaterThan(0);

    // Wrong passphrase: a clear error, nothing written.
    const slotsBefore = JSON.stringify((await executeRows(database.db, sql`select key_slots from volumes where id = ${volumeId}`))[0]);
    const wrong = await api<{ error: { message: string } }>("POST", "/api/v1/volumes/secret/passphrase", { oldPassphrase: "nope", newPassphrase: PASS2 });
    expect(wrong.status).toBe(403);
    expect(wrong.json.error.message).toBe("wrong passphrase for volume secret");
    expect(JSON.stringify((await executeRows(database.db, sql`select key_slots from volumes where id = ${volumeId}`))[0])).toBe(slotsBefore);

    const changed = await api("POST", "/api/v1/volumes/secret/passphrase", { oldPassphrase: PASS1, newPassphrase: PASS2 });
    expect(changed.status).toBe(200);
    // No chunk object was rewritten: the same keys with the same bytes.
    expect(await objects(chunkPrefix(volumeId))).toEqual(chunksBefore);

    // Lock (the unlock grant goes) and restart: the plain key is gone from memory, so the volume is
    // locked and not attachable.
    expect((await api("POST", "/api/v1/volumes/secret/lock")).status).toBe(200);
    await gateway!.stop();
    gateway = undefined;
    await start();
    const attach = await run("nbdinfo", [`${gateway!.nbdUrl}/secret`]);
    expect(attach.code).not.toBe(0);
    expect(logs.join("")).toMatch(/"volume":"secret".*locked|locked.*"volume":"secret"/);
    const stale = await api<{ error: { message: string } }>("POST", "/api/v1/volumes/secret/unlock", { passphrase: PASS1 });
    expect(stale.status).toBe(403);
    expect((await api("POST", "/api/v1/volumes/secret/unlock", { passphrase: PASS2 })).status).toBe(200);
    const read = await nbdsh<string[]>(
      uri.replace(/:\d+\//, `:${new URL(gateway!.nbdUrl).port}/`),
      `print(json.dumps([h.pread(4, 0).decode(), h.pread(4, 6 * ${CHUNK}).decode(), h.pread(4, 7 * ${CHUNK}).hex(), h.pread(14, 9 * ${CHUNK}).decode()]))`,
    );
    expect(read).toEqual(["EEEE", "EEEE", "00000000", "STRATUS-MARKER"]);
    // Each engine takes a fencing token of its own: the first one's objects carry its salt (token 1),
    // and the engine opened after the restart holds a later token, so it can never write their keys.
    expect([...map.chunks.values()].map((ref) => ref.generation % 65536)).toEqual(Array.from({ length: 8 }, () => 1));
    const [tokenRow] = await executeRows(database.db, sql`select fencing_token from volumes where id = ${volumeId}`);
    expect(Number((tokenRow as { fencing_token: number | string }).fencing_token)).toBe(2);

    // Nothing in the bucket is plaintext.
    const store = bucket();
    for (const key of (await objects(volumePrefix(volumeId))).keys()) {
      expect((await store.get(key))!.includes("STRATUS-MARKER"), key).toBe(false);
    }

    // The local cache holds the volume's data decrypted: a lock closes the volume and deletes it.
    const cacheFiles = () => readdir(path.join(dataDir, "cache", volumeId), { recursive: true }).catch(() => [] as string[]);
    expect((await cacheFiles()).length).toBeGreaterThan(0);
    // A client attached at the lock: served before it, refused after it.
    const attached = await RawNbdClient.connect(Number(new URL(gateway!.nbdUrl).port));
    await attached.goTo("secret");
    attached.request(NBD_CMD_READ, 0, 1, 0, 4);
    expect(await attached.readReply(4)).toMatchObject({ kind: "simple", error: 0, data: Buffer.from("EEEE") });
    expect((await api("POST", "/api/v1/volumes/secret/lock")).status).toBe(200);
    await waitFor(async () => (await cacheFiles()).length === 0, "the locked volume's cache to go", 30_000);
    attached.request(NBD_CMD_READ, 0, 2, 0, 4);
    const refused = await attached.readReply(4);
    expect(refused === undefined || (refused.kind === "simple" && refused.error !== 0 && refused.data === undefined)).toBe(true);
    attached.close();
    expect(logs.join("")).toContain('"msg":"volume closed"');
    // Unlocked and read again: cached again, and deleting the volume deletes that cache too.
    expect((await api("POST", "/api/v1/volumes/secret/unlock", { passphrase: PASS2 })).status).toBe(200);
    const closes = () => logs.join("").split('"msg":"volume closed"').length;
    const closedBefore = closes();
    expect(await nbdsh<string>(`${gateway!.nbdUrl}/secret`, `print(json.dumps(h.pread(4, 0).decode()))`)).toBe("EEEE");
    await waitFor(async () => (await cacheFiles()).length > 0, "the cache to fill again", 30_000);
    // nbdsh has disconnected, but the volume counts as attached until its engine has closed.
    await waitFor(() => closes() > closedBefore, "the volume to close after nbdsh", 30_000);
    // Each client's attach and detach (nbdsh twice, the raw client, nbdsh again) is in the account's
    // activity; nbdinfo's refused attach to the locked volume is not.
    const attaches = async () =>
      (await listVolumeActivityRows(database.db, gateway!.localAdminId, volumeId))
        .filter((entry) => entry.action === "volume.attached" || entry.action === "volume.detached")
        .map((entry) => `${entry.action} ${(entry.detail as { holder?: string }).holder}`)
        .reverse();
    await waitFor(async () => (await attaches()).length === 8, "four attaches and detaches in the activity", 30_000);
    expect(await attaches()).toEqual(Array.from({ length: 4 }, () => ["volume.attached local", "volume.detached local"]).flat());

    // Delete: the job removes every object, then the row, then this gateway's cache of it.
    const started = await api<{ volumeId: string; jobId: string }>("DELETE", "/api/v1/volumes/secret");
    expect(started.status).toBe(202);
    let progress = { state: "waiting", objectsDeleted: 0 };
    for (let i = 0; i < 500 && progress.state !== "completed"; i++) {
      progress = (await api<typeof progress>("GET", "/api/v1/volumes/secret/delete-progress")).json;
      if (progress.state !== "completed") await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(progress.state).toBe("completed");
    expect(progress.objectsDeleted).toBeGreaterThanOrEqual(9); // chunks, header and manifests
    expect((await store.list({ prefix: volumePrefix(volumeId) })).objects).toEqual([]);
    expect(await cacheFiles()).toEqual([]);

    // The secrets: neither passphrase nor the master key in logs, Redis or any database column.
    const masterKey = (await readFile(path.join(dataDir, "master.key"), "utf8")).trim();
    const secrets = [PASS1, PASS2, masterKey, Buffer.from(masterKey, "base64").toString("hex")];
    const tables = await executeRows<{ table_name: string }>(database.db, sql`select table_name from information_schema.tables where table_schema = 'public'`);
    const dump: string[] = [];
    for (const { table_name } of tables) {
      dump.push(JSON.stringify(await executeRows(database.db, sql`select * from ${sql.identifier(table_name)}`)));
    }
    const redis = await dumpPrefix(prefix);
    expect(redis.length).toBeGreaterThan(0);
    for (const secret of secrets) {
      expect(logs.join("").includes(secret), "logs").toBe(false);
      expect(redis.join("\n").includes(secret), "redis").toBe(false);
      expect(dump.join("\n").includes(secret), "database").toBe(false);
    }
    expect(logs.join("")).toContain("generated a master key");
  });

  it("recovers volumes from the bucket alone into an empty database, and they read back identical", async () => {
    gateway ??= await start();
    const made = await api<{ id: string }>("POST", "/api/v1/volumes", { name: "keep", size: "2M", chunkSize: CHUNK, durability: "cloud" });
    expect(made.status).toBe(201);
    const pattern = `bytes([(i * 7) % 251 for i in range(${3 * CHUNK})])`;
    await nbdsh<number>(`${gateway.nbdUrl}/keep`, `h.pwrite(${pattern}, ${CHUNK})\nh.flush()\nprint(json.dumps(0))`);
    await gateway.stop();
    gateway = undefined;
    await rm(path.join(dataDir, "cache"), { recursive: true, force: true }); // the machine's cache is lost too

    const empty = await createTestDatabase("postgres");
    try {
      await start(empty);
      const outcome = await api<{ recovered: Array<{ id: string; name: string; epoch: number; chunks: number }> }>("POST", "/api/v1/recover", {});
      expect(outcome.json.recovered).toEqual([expect.objectContaining({ id: made.json.id, name: "keep", chunks: 3 })]);
      const same = await nbdsh<boolean>(
        `${gateway!.nbdUrl}/keep`,
        `print(json.dumps(h.pread(${3 * CHUNK}, ${CHUNK}) == ${pattern} and h.pread(${CHUNK}, 0) == bytes(${CHUNK})))`,
      );
      expect(same).toBe(true);
    } finally {
      await stopGateway();
      await empty.dispose();
    }
  });
});
