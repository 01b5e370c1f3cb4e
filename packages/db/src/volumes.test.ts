import { describe, expect, it } from "vitest";
import { isDbError } from "./errors";
import { isId, newId } from "./ids";
import { users } from "./schema";
import { useTestDatabase } from "./testing/per-database";
import { DATABASE_KINDS, inRolledBackTransaction } from "./testing/test-database";
import { ensureLocalAdmin, findUserById, LOCAL_ADMIN_EMAIL } from "./users";
import {
  deleteVolumeRow,
  findVolumeById,
  exportNameOf,
  findVolumeByName,
  insertVolume,
  listVolumes,
  moveVolumeState,
  parseVolumeName,
  setVolumeState,
} from "./volumes";
import { commitChunkMap, loadChunkMap } from "./chunk-map";
import { acquireLease } from "./leases";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe.each(DATABASE_KINDS)("users and volumes on %s", (kind) => {
  const current = useTestDatabase(kind);

  it("ensures one local admin, idempotently", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const admin = await ensureLocalAdmin(db);
      expect(isId("user", admin.id)).toBe(true);
      expect(admin).toMatchObject({ email: LOCAL_ADMIN_EMAIL, isAdmin: true, passwordHash: null });
      expect(admin.createdAt).toBeInstanceOf(Date);
      expect(await ensureLocalAdmin(db)).toEqual(admin);
      expect(await db.select().from(users)).toHaveLength(1);
      expect(await findUserById(db, admin.id)).toEqual(admin);
      expect(await findUserById(db, newId("user"))).toBeUndefined();
    }));

  it("inserts, finds, lists, changes state and deletes volumes", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const owner = await ensureLocalAdmin(db);
      const big = 200 * 1024 * GiB; // 200 TiB: beyond 32 bits, exact as a number
      const disk = await insertVolume(db, { ownerId: owner.id, name: "disk-1", sizeBytes: big, chunkSize: MiB });
      expect(isId("volume", disk.id)).toBe(true);
      expect(disk).toMatchObject({ ownerId: owner.id, name: "disk-1", sizeBytes: big, chunkSize: MiB, state: "active", commitEpoch: 0, fencingToken: 0 });
      expect(disk.createdAt).toBeInstanceOf(Date);
      expect(disk.updatedAt).toBeInstanceOf(Date);
      const backup = await insertVolume(db, { ownerId: owner.id, name: "Backup.2024_01", sizeBytes: 10 * GiB, chunkSize: 4 * MiB });

      expect((await listVolumes(db)).map((v) => v.name)).toEqual(["Backup.2024_01", "disk-1"]);
      expect(await listVolumes(db, owner.id)).toEqual(await listVolumes(db));
      expect(await listVolumes(db, newId("user"))).toEqual([]);
      expect(await findVolumeByName(db, "disk-1")).toEqual(disk);
      expect(await findVolumeByName(db, "disk-1", owner.id)).toEqual(disk);
      expect(await findVolumeByName(db, "disk-1", newId("user"))).toBeUndefined();
      expect(await findVolumeByName(db, "DISK-1")).toBeUndefined(); // names are case-sensitive
      expect(await findVolumeById(db, backup.id)).toEqual(backup);
      expect(await findVolumeById(db, newId("volume"))).toBeUndefined();

      const deleting = await setVolumeState(db, disk.id, "deleting");
      expect(deleting.state).toBe("deleting");
      expect(deleting.updatedAt.getTime()).toBeGreaterThanOrEqual(disk.updatedAt.getTime());
      expect((await findVolumeById(db, disk.id))?.state).toBe("deleting");
      await expect(setVolumeState(db, newId("volume"), "active")).rejects.toSatisfy((err) => isDbError(err, "VOLUME_NOT_FOUND"));

      expect(await deleteVolumeRow(db, disk.id)).toBe(true);
      expect(await deleteVolumeRow(db, disk.id)).toBe(false); // a retried delete is harmless
      expect((await listVolumes(db)).map((v) => v.id)).toEqual([backup.id]);
    }));

  it("creates an importing volume and moves it on only from the state it expects", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const owner = await ensureLocalAdmin(db);
      const disk = await insertVolume(db, { ownerId: owner.id, name: "incoming", sizeBytes: GiB, chunkSize: MiB, state: "importing" });
      expect(disk.state).toBe("importing");
      // A cancel marked it deleting first: the finishing import must not make it active again.
      expect(await moveVolumeState(db, disk.id, "importing", "deleting")).toBe(true);
      expect(await moveVolumeState(db, disk.id, "importing", "active")).toBe(false);
      expect((await findVolumeById(db, disk.id))?.state).toBe("deleting");
    }));

  it("hands every lease holder a fencing token of its own; an earlier token commits nothing more", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const owner = await ensureLocalAdmin(db);
      const disk = await insertVolume(db, { ownerId: owner.id, name: "fenced", sizeBytes: GiB, chunkSize: MiB });
      const take = async (volumeId: string, gatewayRun: string) => {
        const holder = { gatewayId: "gw", gatewayRun, deviceCredentialId: null, holderName: "test", clientAddress: null };
        return (await acquireLease(db, { volumeId, holder, ttlMs: 60_000, now: new Date(), force: true })).lease.fencingToken;
      };
      const first = await take(disk.id, "run-1");
      const second = await take(disk.id, "run-2");
      expect([first, second]).toEqual([1, 2]);
      const entry = { generation: 65_536 + first, storedSize: 10 };
      await expect(commitChunkMap(db, { volumeId: disk.id, epoch: 1, fencingToken: first, set: [[0, entry]], remove: [] })).rejects.toSatisfy((err) =>
        isDbError(err, "COMMIT_CONFLICT"),
      );
      await commitChunkMap(db, { volumeId: disk.id, epoch: 1, fencingToken: second, set: [[0, { ...entry, generation: 65_536 + second }]], remove: [] });
      expect((await loadChunkMap(db, disk.id)).chunks.get(0)?.generation).toBe(65_536 + second);
      await expect(take(newId("volume"), "run-3")).rejects.toSatisfy((err) => isDbError(err, "VOLUME_NOT_FOUND"));
    }));

  it("refuses a duplicate name for the same owner, and leaves the transaction usable", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const owner = await ensureLocalAdmin(db);
      await insertVolume(db, { ownerId: owner.id, name: "data", sizeBytes: GiB, chunkSize: MiB });
      const err: unknown = await insertVolume(db, { ownerId: owner.id, name: "data", sizeBytes: 2 * GiB, chunkSize: MiB }).catch((e) => e);
      expect(isDbError(err, "VOLUME_EXISTS")).toBe(true);
      expect((err as Error).message).toBe('a volume named "data" already exists');
      expect(await listVolumes(db)).toHaveLength(1);
      expect((await findVolumeByName(db, "data"))?.sizeBytes).toBe(GiB);

      // Another owner may use the name; a lookup without an owner is then ambiguous.
      const [other] = await db
        .insert(users)
        .values({ id: newId("user"), email: "other@example.test" })
        .returning();
      await insertVolume(db, { ownerId: other!.id, name: "data", sizeBytes: GiB, chunkSize: MiB });
      await expect(findVolumeByName(db, "data")).rejects.toSatisfy((err) => isDbError(err, "VOLUME_NAME_AMBIGUOUS"));
      const theirs = await findVolumeByName(db, "data", other!.id);
      expect(theirs?.ownerId).toBe(other!.id);

      // NBD export names: a shared name is exported by id, a name only one owner uses by name.
      const mine = (await findVolumeByName(db, "data", owner.id))!;
      expect(await exportNameOf(db, mine)).toBe(mine.id);
      await deleteVolumeRow(db, theirs!.id);
      expect(await exportNameOf(db, mine)).toBe("data");
    }));

  it.each(["", "-leading-dash", ".hidden", "has space", "slash/name", "ümlaut", "x".repeat(65), "semi;colon"])(
    "refuses the invalid name %j with the rules",
    (name) =>
      inRolledBackTransaction(current().db, async (db) => {
        const owner = await ensureLocalAdmin(db);
        const err: unknown = await insertVolume(db, { ownerId: owner.id, name, sizeBytes: GiB, chunkSize: MiB }).catch((e) => e);
        expect(isDbError(err, "INVALID_VOLUME_NAME")).toBe(true);
        expect((err as Error).message).toContain("1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit");
        expect(await listVolumes(db)).toEqual([]);
      }),
  );

  it("accepts names at the edges of the rules", () => {
    for (const name of ["a", "0", "x".repeat(64), "A.b_c-9"]) expect(parseVolumeName(name)).toBe(name);
  });

  it.each([
    ["a zero size", { sizeBytes: 0, chunkSize: MiB }, "sizeBytes"],
    ["a fractional size", { sizeBytes: 1.5, chunkSize: MiB }, "sizeBytes"],
    ["a chunk size that is not a power of two", { sizeBytes: GiB, chunkSize: 3 * MiB }, "power of two"],
    ["a tiny chunk size", { sizeBytes: GiB, chunkSize: 512 }, "chunkSize"],
  ])("refuses %s", (_what, sizes, mentions) =>
    inRolledBackTransaction(current().db, async (db) => {
      const owner = await ensureLocalAdmin(db);
      const err: unknown = await insertVolume(db, { ownerId: owner.id, name: "v", ...sizes }).catch((e) => e);
      expect(isDbError(err, "INVALID_ARGUMENT")).toBe(true);
      expect((err as Error).message).toContain(mentions);
    }),
  );

  it("refuses a volume for a user that does not exist", async () => {
    // Outside a shared transaction: the foreign-key violation aborts the statement's transaction.
    const err: unknown = await insertVolume(current().db, { ownerId: newId("user"), name: "orphan", sizeBytes: GiB, chunkSize: MiB }).catch((e) => e);
    expect(isDbError(err, "USER_NOT_FOUND")).toBe(true);
    expect(await listVolumes(current().db)).toEqual([]);
  });

  it("will not delete a user who still owns volumes", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const owner = await ensureLocalAdmin(db);
      await insertVolume(db, { ownerId: owner.id, name: "kept", sizeBytes: GiB, chunkSize: MiB });
      // In a nested transaction (a savepoint), so the expected failure does not abort the test's one.
      await expect(db.transaction((tx) => tx.delete(users))).rejects.toThrow();
      expect(await findUserById(db, owner.id)).toBeDefined();
    }));
});
