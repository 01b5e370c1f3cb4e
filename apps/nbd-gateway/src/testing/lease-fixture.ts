/**
 * Two or more gateways on one PostgreSQL, for lease and handoff tests: each a VolumeEngines with its own
 * cache folder and LeaseKeeper on a ManualClock, one shared in-memory bucket. `useLeaseFixture` registers
 * the hooks that make the database and stop the gateways after each test.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ensureLocalAdmin, findVolumeById, insertVolume, type Database, type Db } from "@stratus/db";
import { createTestDatabase, type TestDatabase } from "@stratus/db/testing";
import { CacheBudget, MemoryObjectStore, type ObjectStore } from "@stratus/storage";
import { ManualClock } from "@stratus/storage/testing";
import pino from "pino";
import { afterAll, afterEach, beforeAll } from "vitest";
import { KeyRing } from "../keys/key-ring";
import type { ExportRegistry, OpenedExport } from "../server/export-registry";
import { LeaseKeeper, type LeaseKeeperOptions } from "../engine/lease-keeper";
import { VolumeEngines, type ExportScope } from "../engine/volume-engines";

export const MiB = 2 ** 20;
export const TTL = 30_000;
const logger = pino({ level: process.env.STRATUS_TEST_LOG_LEVEL ?? "silent" });

export interface TestGateway {
  engines: VolumeEngines;
  leases: LeaseKeeper;
  clock: ManualClock;
  cacheDir: string;
  budget: CacheBudget;
}

export interface GatewayOptions {
  cacheDir?: string;
  leaseDb?: Db;
  heldWaitMs?: number;
  handoffTimeoutMs?: number;
  askHolder?: LeaseKeeperOptions["askHolder"];
  /** The bucket as this gateway sees it (a failing one, say); the shared one by default. */
  store?: ObjectStore;
}

export function useLeaseFixture(prefix: string) {
  let fixture: TestDatabase;
  let database: Database;
  let ownerId: string;
  let root: string;
  const store = new MemoryObjectStore();
  const keys = new KeyRing({ key: randomBytes(32), id: "test" });
  const running: TestGateway[] = [];

  beforeAll(async () => {
    fixture = await createTestDatabase("postgres");
    database = await fixture.open();
    ownerId = (await ensureLocalAdmin(database.db)).id;
    root = mkdtempSync(path.join(tmpdir(), prefix));
  });
  afterEach(async () => {
    for (const gateway of running.splice(0)) {
      await gateway.leases.stop();
      await gateway.engines.closeAll().catch(() => {});
    }
  });
  afterAll(async () => {
    await fixture?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  /** A gateway: `gatewayId` and a cache folder of its own (reused when given, as a restart would). */
  function gateway(gatewayId: string, options: GatewayOptions = {}): TestGateway {
    const { cacheDir = mkdtempSync(path.join(root, `${gatewayId}-`)), leaseDb = database.db, heldWaitMs = 0, handoffTimeoutMs = 5_000, askHolder } = options;
    const clock = new ManualClock(Date.now());
    const budget = new CacheBudget({ targetBytes: 256 * MiB, dirtyLimitBytes: 64 * MiB });
    const leases: LeaseKeeper = new LeaseKeeper({
      db: leaseDb,
      identity: { gatewayId, gatewayRun: randomBytes(8).toString("hex") },
      ttlMs: TTL,
      clock,
      heldWaitMs,
      askHolder,
      logger,
      // As the gateway does: a lease taken by another goes aside at once, an expired one stays cached.
      onLost: (volumeId, token, taken) => engines.fence(volumeId, token, "lease lost", { keepCache: !taken }),
    });
    const engines: VolumeEngines = new VolumeEngines({
      leases,
      handoffTimeoutMs,
      database,
      store: options.store ?? store,
      logger,
      keys,
      cacheDir,
      cacheBudget: budget,
      commitIntervalMs: 3_600_000,
    });
    leases.start();
    const made = { engines, leases, clock, cacheDir, budget };
    running.push(made);
    return made;
  }

  async function volume(name: string, durability: "local" | "cloud" = "cloud") {
    const row = await insertVolume(database.db, { ownerId, name, sizeBytes: 8 * MiB, chunkSize: MiB, durability });
    keys.remember(row.id, randomBytes(32));
    return row;
  }

  const device = (credentialId: string | null, client = credentialId ?? "local"): ExportScope => ({
    ownerId,
    volumeIds: null,
    client,
    deviceCredentialId: credentialId,
  });
  const tokenOf = async (volumeId: string) => (await findVolumeById(database.db, volumeId))!.fencingToken;
  const open = async (registry: ExportRegistry, name: string): Promise<OpenedExport> => (await registry.open(name, { clientAddress: "192.0.2.7" }))!;

  return {
    get database() {
      return database;
    },
    store,
    keys,
    running,
    logger,
    gateway,
    volume,
    device,
    tokenOf,
    open,
  };
}
