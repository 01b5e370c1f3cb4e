/**
 * Orphan set rows on PGlite and PostgreSQL: recorded once per gateway folder, listed per volume and
 * owner, discarded once, and gone with their volume.
 */
import { describe, expect, it } from "vitest";
import type { Db } from "./client";
import { isId } from "./ids";
import {
  deleteOrphanSet,
  findOrphanSet,
  listGatewayOrphanSets,
  listOrphanSets,
  listOwnerOrphanSets,
  markOrphanSetDiscarded,
  recordOrphanSet,
  type NewOrphanSet,
} from "./orphan-sets";
import { useTestDatabase } from "./testing/per-database";
import { DATABASE_KINDS, inRolledBackTransaction } from "./testing/test-database";
import { ensureLocalAdmin } from "./users";
import { deleteVolumeRow, insertVolume } from "./volumes";

const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds));

async function makeVolume(db: Db, name: string): Promise<{ volumeId: string; ownerId: string }> {
  const owner = await ensureLocalAdmin(db);
  const row = await insertVolume(db, { ownerId: owner.id, name, sizeBytes: 2 ** 30, chunkSize: 2 ** 20 });
  return { volumeId: row.id, ownerId: owner.id };
}

const set = (volumeId: string, token: number, overrides: Partial<NewOrphanSet> = {}): NewOrphanSet => ({
  volumeId,
  gatewayId: "gw-1",
  dirName: `${volumeId}-${token}`,
  fencingToken: token,
  bytes: 2 ** 20,
  dirtyChunks: 1,
  reason: "another holder took its lease",
  orphanedAt: at(token),
  ...overrides,
});

describe.each(DATABASE_KINDS)("orphan sets on %s", (kind) => {
  const current = useTestDatabase(kind);

  it("records a set once per gateway folder and lists a volume's and an owner's sets newest first", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const { volumeId, ownerId } = await makeVolume(db, "disk");
      const first = await recordOrphanSet(db, set(volumeId, 1));
      expect(isId("orphanSet", first!.id)).toBe(true);
      // The reconcile at start records the same folder again: same row, refreshed figures.
      const again = await recordOrphanSet(db, set(volumeId, 1, { bytes: 3 * 2 ** 20, dirtyChunks: 3 }));
      expect(again).toMatchObject({ id: first!.id, bytes: 3 * 2 ** 20, dirtyChunks: 3 });
      const second = await recordOrphanSet(db, set(volumeId, 4));
      // Another gateway's folder of the same name is another set.
      await recordOrphanSet(db, set(volumeId, 1, { gatewayId: "gw-2" }));

      expect((await listOrphanSets(db, volumeId)).map((row) => row.fencingToken)).toEqual([4, 1, 1]);
      expect((await listOwnerOrphanSets(db, ownerId))[0]).toMatchObject({ id: second!.id, volumeName: "disk" });
      expect((await listGatewayOrphanSets(db, "gw-1")).map((row) => row.id).sort()).toEqual([first!.id, second!.id].sort());
    }));

  it("discards once, hides discarded sets from lists, deletes rows", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const { volumeId } = await makeVolume(db, "disk");
      const row = (await recordOrphanSet(db, set(volumeId, 1)))!;
      expect(await markOrphanSetDiscarded(db, row.id, { by: "usr_x", now: at(9) })).toMatchObject({ discardedAt: at(9), discardedBy: "usr_x" });
      expect(await markOrphanSetDiscarded(db, row.id, { by: "usr_x", now: at(10) })).toBeUndefined();
      expect(await listOrphanSets(db, volumeId)).toEqual([]);
      expect(await listOrphanSets(db, volumeId, { includeDiscarded: true })).toHaveLength(1);
      expect(await deleteOrphanSet(db, row.id)).toBe(true);
      expect(await deleteOrphanSet(db, row.id)).toBe(false);
      expect(await findOrphanSet(db, row.id)).toBeUndefined();
    }));

  it("records nothing for a missing volume, and a deleted volume takes its sets along", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const { volumeId } = await makeVolume(db, "disk");
      expect(await recordOrphanSet(db, set("vol_11111111111111111111", 1))).toBeUndefined();
      const row = (await recordOrphanSet(db, set(volumeId, 1)))!;
      await deleteVolumeRow(db, volumeId);
      expect(await findOrphanSet(db, row.id)).toBeUndefined();
    }));
});
