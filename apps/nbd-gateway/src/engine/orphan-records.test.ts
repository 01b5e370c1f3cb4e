/**
 * Orphan sets from the fence to the dashboard's verbs, on real PostgreSQL and Redis: a set made by a
 * fence gets a row; the verbs list it, export it as a raw image whose bytes are the uncommitted writes
 * at their offsets, and discard it (the gateway deletes the folder on the Redis notice, then the row);
 * a start reconciles rows and folders when the database missed a set or a discard.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buffer } from "node:stream/consumers";
import { discardOrphanSet, exportOrphanSet, listAllOrphanSets, listVolumeOrphanSets, type ServiceContext } from "@stratus/control";
import { openTestRuntime, type TestRuntime } from "@stratus/control/testing";
import { acquireLease, findOrphanSet, insertAccount, insertVolume, listGatewayOrphanSets, markOrphanSetDiscarded, type Db, type UserRow } from "@stratus/db";
import { CacheBudget } from "@stratus/storage";
import { ManualClock } from "@stratus/storage/testing";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { KeyRing } from "../keys/key-ring";
import { waitFor } from "../testing/nbd-tools";
import { LeaseKeeper } from "./lease-keeper";
import { OrphanRecords } from "./orphan-records";
import { ORPHANS_DIR } from "./orphan-sets";
import { VolumeEngines } from "./volume-engines";

const MiB = 2 ** 20;
const TTL = 30_000;
const logger = pino({ level: process.env.STRATUS_TEST_LOG_LEVEL ?? "silent" });

describe("orphan sets", () => {
  let t: TestRuntime;
  let alice: UserRow;
  let root: string;
  const keys = new KeyRing({ key: randomBytes(32), id: "test" });
  const cleanups: Array<() => Promise<unknown>> = [];
  const as = (user: UserRow, scope: "read" | "write" = "write"): ServiceContext => ({ runtime: t.runtime, actor: { userId: user.id, via: "session", scope } });

  beforeAll(async () => {
    t = await openTestRuntime("postgres");
    alice = await insertAccount(t.runtime.database.db, { email: "alice@example.com", passwordHash: "scrypt$x", isAdmin: false });
    root = mkdtempSync(path.join(tmpdir(), "stratus-orphans-"));
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    await t?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  /** A gateway as start.ts wires it: engines that record their orphan sets, listening for discards. */
  async function gateway(gatewayId: string, options: { recordDb?: Db } = {}) {
    const cacheDir = mkdtempSync(path.join(root, `${gatewayId}-`));
    const database = t.runtime.database;
    const records = new OrphanRecords({ db: options.recordDb ?? database.db, gatewayId, cacheDir, logger });
    const recorded: Array<Promise<unknown>> = [];
    const leases: LeaseKeeper = new LeaseKeeper({
      db: database.db,
      identity: { gatewayId, gatewayRun: randomBytes(8).toString("hex") },
      ttlMs: TTL,
      clock: new ManualClock(Date.now()),
      logger,
      onLost: (volumeId, token) => engines.fence(volumeId, token, "another holder took its lease"),
    });
    const engines: VolumeEngines = new VolumeEngines({
      leases,
      database,
      store: t.runtime.store,
      logger,
      keys,
      cacheDir,
      cacheBudget: new CacheBudget({ targetBytes: 256 * MiB, dirtyLimitBytes: 64 * MiB }),
      commitIntervalMs: 3_600_000,
      handoffTimeoutMs: 5_000,
      onOrphaned: (moved) => recorded.push(records.record(moved)),
    });
    const stopListening = await records.listen(t.runtime.redis, t.runtime.config.prefix);
    cleanups.push(async () => {
      await stopListening();
      await leases.stop();
      await engines.closeAll().catch(() => {});
    });
    // The web in the same process exports what this gateway holds.
    t.runtime.localGateway = { gatewayId, cacheDir };
    return { engines, records, cacheDir, recorded };
  }

  /** Writes to a cloud volume, commits, writes more; another holder forces the lease; the next FLUSH fences. */
  async function fencedVolume(g: Awaited<ReturnType<typeof gateway>>, name: string) {
    const row = await insertVolume(t.runtime.database.db, { ownerId: alice.id, name, sizeBytes: 8 * MiB, chunkSize: MiB, durability: "cloud" });
    keys.remember(row.id, randomBytes(32));
    const opened = (await g.engines.forScope({ ownerId: alice.id, volumeIds: null, client: "local", deviceCredentialId: null }).open(name))!;
    await opened.device.write(0, Buffer.alloc(2 * MiB, 1));
    await opened.device.flush(); // committed: chunks 0 and 1 are in the bucket
    const uncommitted = randomBytes(4096);
    await opened.device.write(5 * MiB + 8192, uncommitted);
    await opened.device.write(MiB, Buffer.alloc(512, 2));
    await acquireLease(t.runtime.database.db, {
      volumeId: row.id,
      holder: { gatewayId: "gw-elsewhere", gatewayRun: "run", deviceCredentialId: null, holderName: "other", clientAddress: null },
      ttlMs: TTL,
      now: new Date(),
      force: true,
    });
    await expect(opened.device.flush()).rejects.toThrow(); // the commit is refused: fenced
    const folder = path.join(g.cacheDir, ORPHANS_DIR, `${row.id}-1`);
    await waitFor(() => existsSync(path.join(folder, "orphan.json")), "the orphan set");
    await opened.release();
    // What the image must be: the never-committed chunks whole (1: committed ones, then 512 bytes of 2s; 5: zeros and the write), holes elsewhere.
    const expected = Buffer.alloc(8 * MiB);
    expected.fill(1, MiB, 2 * MiB).fill(2, MiB, MiB + 512);
    uncommitted.copy(expected, 5 * MiB + 8192);
    return { row, folder, expected };
  }

  it("records a fenced set, lists it, exports its uncommitted writes at their offsets, and discards it", async () => {
    const g = await gateway("gw-one");
    const { row, folder, expected } = await fencedVolume(g, "disk");
    await Promise.all(g.recorded);

    const [listed] = await listVolumeOrphanSets(as(alice), { name: "disk" });
    expect(listed).toMatchObject({ volumeId: row.id, volumeName: "disk", gatewayId: "gw-one", fencingToken: 1, dirtyChunks: 2, exportable: true });
    expect(listed!.exportCommand).toBe(`npx stratus orphans export ${listed!.id} --out disk-orphan-1.img`);
    expect(await listAllOrphanSets(as(alice))).toHaveLength(1);

    const exported = await exportOrphanSet(as(alice), { id: listed!.id });
    expect(exported).toMatchObject({ fileName: "disk-orphan-1.img", sizeBytes: 8 * MiB });
    expect((await buffer(exported.stream)).equals(expected)).toBe(true);
    await expect(exportOrphanSet(as(alice, "read"), { id: listed!.id })).rejects.toMatchObject({ code: "FORBIDDEN" });

    // Another owner sees nothing of it.
    const bob = await insertAccount(t.runtime.database.db, { email: "bob@example.com", passwordHash: "scrypt$x", isAdmin: false });
    await expect(discardOrphanSet(as(bob), { id: listed!.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await listAllOrphanSets(as(bob))).toEqual([]);

    // Discard: the row is marked at once (gone from lists), the gateway deletes the folder, then the row.
    expect(await discardOrphanSet(as(alice), { id: listed!.id })).toEqual({ id: listed!.id, discarded: true });
    expect(await listVolumeOrphanSets(as(alice), { name: "disk" })).toEqual([]);
    await waitFor(async () => !existsSync(folder) && (await findOrphanSet(t.runtime.database.db, listed!.id)) === undefined, "the folder and row to go");
    await expect(discardOrphanSet(as(alice), { id: listed!.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("refuses an export from a process whose gateway does not hold the set, naming the gateway", async () => {
    const g = await gateway("gw-two");
    await fencedVolume(g, "remote");
    await Promise.all(g.recorded);
    const [listed] = await listVolumeOrphanSets(as(alice), { name: "remote" });
    t.runtime.localGateway = { gatewayId: "gw-web-only", cacheDir: path.join(root, "nothing") };
    expect((await listVolumeOrphanSets(as(alice), { name: "remote" }))[0]!.exportable).toBe(false);
    await expect(exportOrphanSet(as(alice), { id: listed!.id })).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringContaining(`is on the disk of gateway gw-two, not this server's: run \`npx stratus orphans export ${listed!.id} --out FILE\``),
    });
  });

  it("reconciles at start: records sets the database missed, deletes rows without folders and discarded folders", async () => {
    let down = true;
    const flaky = new Proxy(t.runtime.database.db, {
      get: (target, property, receiver) =>
        property === "insert" && down
          ? () => {
              throw new Error("database unreachable");
            }
          : (Reflect.get(target, property, receiver) as unknown),
    });
    const g = await gateway("gw-three", { recordDb: flaky });
    const first = await fencedVolume(g, "missed");
    await Promise.all(g.recorded);
    expect(await listGatewayOrphanSets(t.runtime.database.db, "gw-three")).toEqual([]);

    down = false;
    expect(await g.records.reconcile()).toEqual({ recorded: 1, rowsDeleted: 0, foldersDeleted: 0 });
    const [row] = await listGatewayOrphanSets(t.runtime.database.db, "gw-three");
    expect(row).toMatchObject({ volumeId: first.row.id, dirName: `${first.row.id}-1`, dirtyChunks: 2, fencingToken: 1 });

    // A discard the gateway never heard of (it was down): the next start deletes the folder and the row.
    await markOrphanSetDiscarded(t.runtime.database.db, row!.id, { by: alice.id, now: new Date() });
    expect(await g.records.reconcile()).toEqual({ recorded: 0, rowsDeleted: 1, foldersDeleted: 1 });
    expect(existsSync(first.folder)).toBe(false);

    // A folder removed by hand: its row goes.
    const second = await fencedVolume(g, "removed-by-hand");
    await Promise.all(g.recorded);
    rmSync(second.folder, { recursive: true, force: true });
    expect(await g.records.reconcile()).toEqual({ recorded: 0, rowsDeleted: 1, foldersDeleted: 0 });
    expect(await listGatewayOrphanSets(t.runtime.database.db, "gw-three")).toEqual([]);
  });
});
