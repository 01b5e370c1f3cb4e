import { describe, expect, it } from "vitest";
import { commitChunkMap } from "./chunk-map";
import type { Db } from "./client";
import { isDbError } from "./errors";
import { newId } from "./ids";
import { acquireLease, findLiveLease, forceReleaseLease, findLiveLeases, listLiveLeases, releaseLease, renewLeases, type LeaseHolder } from "./leases";
import { useTestDatabase } from "./testing/per-database";
import { DATABASE_KINDS, inRolledBackTransaction } from "./testing/test-database";
import { ensureLocalAdmin } from "./users";
import { deleteVolumeRow, findVolumeById, insertVolume } from "./volumes";

const TTL = 30_000;
const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds));
const holder = (gatewayId: string, gatewayRun: string, device: string | null = null): LeaseHolder => ({
  gatewayId,
  gatewayRun,
  deviceCredentialId: device,
  holderName: device ?? "local",
  clientAddress: "10.0.0.2",
});
const A = holder("gw-1", "run-1", "dev_laptop");
const B = holder("gw-2", "run-1", "dev_desktop");

async function makeVolume(db: Db, name: string): Promise<string> {
  const owner = await ensureLocalAdmin(db);
  return (await insertVolume(db, { ownerId: owner.id, name, sizeBytes: 2 ** 30, chunkSize: 2 ** 20 })).id;
}

describe.each(DATABASE_KINDS)("volume leases on %s", (kind) => {
  const current = useTestDatabase(kind);

  it("takes a free lease with a new fencing token, and keeps it for the same holder", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await makeVolume(db, "disk");
      const first = await acquireLease(db, { volumeId, holder: A, ttlMs: TTL, now: at(0) });
      expect(first.kind).toBe("acquired");
      expect(first.lease).toMatchObject({ volumeId, fencingToken: 1, gatewayId: "gw-1", holderName: "dev_laptop", expiresAt: at(30) });
      expect((await findVolumeById(db, volumeId))!.fencingToken).toBe(1);

      // A second connection of the same device on the same gateway run: same lease, same token.
      const again = await acquireLease(db, { volumeId, holder: A, ttlMs: TTL, now: at(10) });
      expect(again).toMatchObject({ kind: "acquired", lease: { fencingToken: 1, expiresAt: at(40) } });
      expect((await findVolumeById(db, volumeId))!.fencingToken).toBe(1);
    }));

  it("reports a live holder to another device, and lets it take over once expired, released or forced", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await makeVolume(db, "disk");
      await acquireLease(db, { volumeId, holder: A, ttlMs: TTL, now: at(0) });

      const refused = await acquireLease(db, { volumeId, holder: B, ttlMs: TTL, now: at(29) });
      expect(refused).toMatchObject({ kind: "held", lease: { gatewayId: "gw-1", fencingToken: 1 } });
      // The same gateway, another device: also a different holder.
      expect((await acquireLease(db, { volumeId, holder: holder("gw-1", "run-1", "dev_phone"), ttlMs: TTL, now: at(29) })).kind).toBe("held");

      const expired = await acquireLease(db, { volumeId, holder: B, ttlMs: TTL, now: at(30) });
      expect(expired).toMatchObject({ kind: "acquired", lease: { gatewayId: "gw-2", fencingToken: 2 }, previous: { gatewayId: "gw-1", fencingToken: 1 } });

      expect(await releaseLease(db, volumeId, 1)).toBe(false); // the old holder's token no longer names it
      expect(await releaseLease(db, volumeId, 2)).toBe(true);
      expect(await findLiveLease(db, volumeId, at(31))).toBeUndefined();
      expect(await acquireLease(db, { volumeId, holder: A, ttlMs: TTL, now: at(31) })).toMatchObject({ kind: "acquired", lease: { fencingToken: 3 } });

      const forced = await acquireLease(db, { volumeId, holder: B, ttlMs: TTL, now: at(32), force: true });
      expect(forced).toMatchObject({ kind: "acquired", lease: { gatewayId: "gw-2", fencingToken: 4 } });
    }));

  it("gives a restarted gateway its earlier run's lease at once, with a new token", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await makeVolume(db, "disk");
      await acquireLease(db, { volumeId, holder: A, ttlMs: TTL, now: at(0) });
      const restarted = await acquireLease(db, { volumeId, holder: { ...A, gatewayRun: "run-2" }, ttlMs: TTL, now: at(1) });
      expect(restarted).toMatchObject({ kind: "acquired", lease: { gatewayRun: "run-2", fencingToken: 2 } });
    }));

  it("fences the old holder's commits, and its renewal says it lost the volume", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await makeVolume(db, "disk");
      const other = await makeVolume(db, "other");
      await acquireLease(db, { volumeId, holder: A, ttlMs: TTL, now: at(0) });
      await acquireLease(db, { volumeId: other, holder: A, ttlMs: TTL, now: at(0) });
      await acquireLease(db, { volumeId, holder: B, ttlMs: TTL, now: at(5), force: true });

      const held = new Map([
        [volumeId, 1],
        [other, 1],
      ]);
      expect(await renewLeases(db, { gatewayId: "gw-1", gatewayRun: "run-1", held, ttlMs: TTL, now: at(10) })).toEqual([volumeId]);
      expect((await findLiveLease(db, other, at(39)))?.expiresAt).toEqual(at(40));

      const entry = { generation: 65_537, storedSize: 10 };
      const stale = commitChunkMap(db, { volumeId, epoch: 1, fencingToken: 1, set: [[0, entry]], remove: [] });
      await expect(stale).rejects.toSatisfy((err) => isDbError(err, "COMMIT_CONFLICT"));
      await commitChunkMap(db, { volumeId, epoch: 1, fencingToken: 2, set: [[0, entry]], remove: [] });
    }));

  it("force-releases a live lease: the token rises, the row goes, the holder's renewal and commits fail", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await makeVolume(db, "disk");
      await acquireLease(db, { volumeId, holder: A, ttlMs: TTL, now: at(0) });

      const removed = await forceReleaseLease(db, volumeId, at(5));
      expect(removed).toMatchObject({ volumeId, gatewayId: "gw-1", fencingToken: 1, holderName: "dev_laptop" });
      expect((await findVolumeById(db, volumeId))!.fencingToken).toBe(2);
      expect(await findLiveLease(db, volumeId, at(5))).toBeUndefined();
      expect(await renewLeases(db, { gatewayId: "gw-1", gatewayRun: "run-1", held: new Map([[volumeId, 1]]), ttlMs: TTL, now: at(6) })).toEqual([volumeId]);
      const entry = { generation: 65_537, storedSize: 10 };
      await expect(commitChunkMap(db, { volumeId, epoch: 1, fencingToken: 1, set: [[0, entry]], remove: [] })).rejects.toSatisfy((err) =>
        isDbError(err, "COMMIT_CONFLICT"),
      );
      // The next taker gets a token above the fenced one.
      expect(await acquireLease(db, { volumeId, holder: B, ttlMs: TTL, now: at(7) })).toMatchObject({ kind: "acquired", lease: { fencingToken: 3 } });
    }));

  it("force-release of a free volume changes nothing; of an expired lease it fences but reports none", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await makeVolume(db, "disk");
      expect(await forceReleaseLease(db, volumeId, at(0))).toBeUndefined();
      expect((await findVolumeById(db, volumeId))!.fencingToken).toBe(0);

      await acquireLease(db, { volumeId, holder: A, ttlMs: TTL, now: at(0) });
      expect(await forceReleaseLease(db, volumeId, at(30))).toBeUndefined();
      expect((await findVolumeById(db, volumeId))!.fencingToken).toBe(2);
      expect(await releaseLease(db, volumeId, 1)).toBe(false);

      await expect(forceReleaseLease(db, newId("volume"), at(0))).rejects.toSatisfy((err) => isDbError(err, "VOLUME_NOT_FOUND"));
    }));

  it("lists an owner's live leases and refuses a missing volume", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await makeVolume(db, "disk");
      const owner = await ensureLocalAdmin(db);
      await acquireLease(db, { volumeId, holder: A, ttlMs: TTL, now: at(0) });
      expect([...(await listLiveLeases(db, owner.id, at(1))).keys()]).toEqual([volumeId]);
      expect((await listLiveLeases(db, owner.id, at(30))).size).toBe(0);
      expect([...(await findLiveLeases(db, [volumeId, newId("volume")], at(1))).keys()]).toEqual([volumeId]);
      expect((await findLiveLeases(db, [], at(1))).size).toBe(0);
      await expect(acquireLease(db, { volumeId: newId("volume"), holder: A, ttlMs: TTL, now: at(0) })).rejects.toSatisfy((err) =>
        isDbError(err, "VOLUME_NOT_FOUND"),
      );
    }));

  it("lets exactly one of two racing devices take a free lease", async () => {
    // Outside a test transaction: the two takers need their own transactions to race.
    const volumeId = await makeVolume(current().db, "lease-race");
    try {
      const results = await Promise.all([
        acquireLease(current().db, { volumeId, holder: A, ttlMs: TTL, now: at(0) }),
        acquireLease(current().db, { volumeId, holder: B, ttlMs: TTL, now: at(0) }),
      ]);
      expect(results.map((r) => r.kind).sort()).toEqual(["acquired", "held"]);
      expect((await findVolumeById(current().db, volumeId))!.fencingToken).toBe(1);
    } finally {
      await deleteVolumeRow(current().db, volumeId);
    }
  });
});
