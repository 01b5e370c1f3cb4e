/** The control plane's queries: shrink moves chunks into garbage, tokens, accounts, activity, samples. */
import { describe, expect, it } from "vitest";
import { claimLocalAdmin, countAccounts, findUserByEmail, insertAccount } from "./accounts";
import { findLatestActivityByName, insertActivity, listVolumeActivityRows } from "./activity";
import { commitChunkMap, loadChunkMap } from "./chunk-map";
import { isDbError } from "./errors";
import { listExpiredGarbage } from "./garbage";
import { resizeVolumeRow } from "./resize";
import { insertVolumeSamples, listVolumeSamples, pruneVolumeSamples } from "./samples";
import { useTestDatabase } from "./testing/per-database";
import { DATABASE_KINDS, inRolledBackTransaction } from "./testing/test-database";
import { findApiTokenByPrefix, insertApiToken, listApiTokens, revokeApiTokenRow } from "./tokens";
import { ensureLocalAdmin, LOCAL_ADMIN_EMAIL } from "./users";
import { insertVolume, volumeStoredTotals } from "./volumes";

const MiB = 2 ** 20;

describe.each(DATABASE_KINDS)("control-plane tables on %s", (kind) => {
  const current = useTestDatabase(kind);

  it("shrinks: chunks past the end leave the map for the garbage in one step, the epoch moves on", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const owner = await ensureLocalAdmin(db);
      const volume = await insertVolume(db, { ownerId: owner.id, name: "shrinky", sizeBytes: 8 * MiB, chunkSize: MiB });
      await commitChunkMap(db, { volumeId: volume.id, epoch: 1, set: [0, 3, 5, 7].map((i) => [i, { generation: 1, storedSize: 10 }] as const), remove: [] });
      expect(await volumeStoredTotals(db, [volume.id])).toEqual(new Map([[volume.id, { chunks: 4, storedBytes: 40 }]]));
      const grown = await resizeVolumeRow(db, volume.id, 16 * MiB);
      expect(grown).toMatchObject({ chunksFreed: 0, row: { sizeBytes: 16 * MiB, commitEpoch: 1 } });
      const shrunk = await resizeVolumeRow(db, volume.id, 4 * MiB);
      expect(shrunk).toMatchObject({ chunksFreed: 2, row: { sizeBytes: 4 * MiB, commitEpoch: 2 } });
      const map = await loadChunkMap(db, volume.id);
      expect([...map.chunks.keys()]).toEqual([0, 3]);
      expect(map.epoch).toBe(2);
      const garbage = await listExpiredGarbage(db, volume.id, new Date(Date.now() + 60_000));
      expect(garbage.map((g) => g.index).sort()).toEqual([5, 7]);
      await expect(resizeVolumeRow(db, "vol_nope", MiB)).rejects.toSatisfy((e) => isDbError(e, "VOLUME_NOT_FOUND"));
    }));

  it("keeps tokens by prefix and owner; revoking someone else's token does nothing", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const a = await insertAccount(db, { email: "A@Example.com", passwordHash: "scrypt$x", isAdmin: false });
      const b = await insertAccount(db, { email: "b@example.com", passwordHash: "scrypt$y", isAdmin: false });
      expect((await findUserByEmail(db, "a@example.com"))?.id).toBe(a.id);
      // In a savepoint: the failed insert must not abort the enclosing test transaction.
      await expect(db.transaction((tx) => insertAccount(tx, { email: "a@EXAMPLE.com", passwordHash: "z", isAdmin: false }))).rejects.toSatisfy((e) =>
        isDbError(e, "EMAIL_TAKEN"),
      );
      const token = await insertApiToken(db, { userId: a.id, name: "t", prefix: "Abcdefgh", secretHash: "00".repeat(32), scope: "read", expiresAt: null });
      expect((await findApiTokenByPrefix(db, "Abcdefgh"))?.user.id).toBe(a.id);
      expect(await revokeApiTokenRow(db, b.id, token.id)).toBeUndefined();
      expect((await revokeApiTokenRow(db, a.id, token.id))?.revokedAt).toBeInstanceOf(Date);
      expect(await revokeApiTokenRow(db, a.id, token.id)).toBeUndefined();
      expect((await listApiTokens(db, b.id)).length).toBe(0);
    }));

  it("lets the first account claim the local admin once", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const local = await ensureLocalAdmin(db);
      expect(await countAccounts(db)).toBe(0);
      const claimed = await claimLocalAdmin(db, { email: "first@example.com", passwordHash: "scrypt$h" });
      expect(claimed).toMatchObject({ id: local.id, email: "first@example.com", isAdmin: true });
      expect(await claimLocalAdmin(db, { email: "second@example.com", passwordHash: "scrypt$h" })).toBeUndefined();
      expect(await findUserByEmail(db, LOCAL_ADMIN_EMAIL)).toBeUndefined();
      expect(await countAccounts(db)).toBe(1);
    }));

  it("records activity (kept after the volume row goes) and samples (pruned by age)", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const owner = await ensureLocalAdmin(db);
      const volume = await insertVolume(db, { ownerId: owner.id, name: "logged", sizeBytes: MiB, chunkSize: MiB });
      await insertActivity(db, { ownerId: owner.id, via: "local", volumeId: volume.id, volumeName: "logged", action: "volume.create" });
      await insertActivity(db, { ownerId: owner.id, via: "local", volumeId: volume.id, volumeName: "logged", action: "volume.delete" });
      expect((await listVolumeActivityRows(db, owner.id, volume.id)).map((r) => r.action)).toEqual(["volume.delete", "volume.create"]);
      expect((await findLatestActivityByName(db, owner.id, "logged", "volume.delete"))?.volumeId).toBe(volume.id);
      const old = new Date(Date.now() - 8 * 86_400_000);
      const now = new Date();
      await insertVolumeSamples(
        db,
        [old, now].map((at) => ({ volumeId: volume.id, at, storedBytes: 1, logicalWrittenBytes: 2, readBytes: 3, writtenBytes: 4 })),
      );
      await pruneVolumeSamples(db, new Date(Date.now() - 7 * 86_400_000));
      expect((await listVolumeSamples(db, volume.id, new Date(0))).map((s) => s.at.getTime())).toEqual([now.getTime()]);
    }));
});
