import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { commitChunkMap, loadChunkMap, type ChunkEntry } from "./chunk-map";
import type { Db } from "./client";
import { isDbError } from "./errors";
import { countGarbage, deleteGarbageRows, generationKey, listExpiredGarbage, loadReferencedGenerations } from "./garbage";
import { newId } from "./ids";
import { volumeGarbage, type StoredKeySlot } from "./schema";
import { useTestDatabase } from "./testing/per-database";
import { DATABASE_KINDS, inRolledBackTransaction } from "./testing/test-database";
import { ensureLocalAdmin } from "./users";
import { findVolumeById, insertRecoveredVolume, insertVolume, updateVolumeKeySlots } from "./volumes";

const MiB = 1024 * 1024;
const entry = (generation: number): ChunkEntry => ({ generation, storedSize: 100 + generation });
const slot: StoredKeySlot = { kind: "master", masterKeyId: "0011223344556677", nonce: "bm9uY2U=", wrapped: "d3JhcHBlZA==" };

async function createVolume(db: Db, name = "vol"): Promise<string> {
  const owner = await ensureLocalAdmin(db);
  return (await insertVolume(db, { ownerId: owner.id, name, sizeBytes: 1024 * MiB, chunkSize: MiB, keySlots: [slot] })).id;
}

/** Moves every garbage row of the volume `seconds` into the past (instead of waiting for the grace). */
async function age(db: Db, volumeId: string, seconds: number): Promise<void> {
  const rows = await db.select().from(volumeGarbage).where(eq(volumeGarbage.volumeId, volumeId));
  for (const row of rows) {
    await db
      .update(volumeGarbage)
      .set({ supersededAt: new Date(row.supersededAt.getTime() - seconds * 1000) })
      .where(eq(volumeGarbage.generation, row.generation));
  }
}

describe.each(DATABASE_KINDS)("garbage, key slots and recovery on %s", (kind) => {
  const current = useTestDatabase(kind);

  it("records garbage in the commit's transaction and stamps lastCommitAt", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await createVolume(db);
      expect((await findVolumeById(db, volumeId))?.lastCommitAt).toBeNull();
      await commitChunkMap(db, {
        volumeId,
        epoch: 1,
        set: [
          [0, entry(65536)],
          [1, entry(65536)],
        ],
        remove: [],
        garbage: [],
      });
      expect((await findVolumeById(db, volumeId))?.lastCommitAt).toBeInstanceOf(Date);
      await commitChunkMap(db, {
        volumeId,
        epoch: 2,
        set: [[0, entry(131072)]],
        remove: [1],
        garbage: [
          [0, 65536],
          [1, 65536],
        ],
      });
      expect(await countGarbage(db, volumeId)).toBe(2);

      // A refused commit records no garbage.
      await expect(commitChunkMap(db, { volumeId, epoch: 2, set: [[0, entry(9)]], remove: [], garbage: [[0, 131072]] })).rejects.toSatisfy((err) =>
        isDbError(err, "COMMIT_CONFLICT"),
      );
      expect(await countGarbage(db, volumeId)).toBe(2);
    }));

  it("refuses garbage that is also the commit's new object", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await createVolume(db);
      await expect(commitChunkMap(db, { volumeId, epoch: 1, set: [[0, entry(5)]], remove: [], garbage: [[0, 5]] })).rejects.toSatisfy((err) =>
        isDbError(err, "INVALID_ARGUMENT"),
      );
    }));

  it("lists only garbage past the grace, never a current generation, and deletes rows", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await createVolume(db);
      const other = await createVolume(db, "other");
      await commitChunkMap(db, {
        volumeId,
        epoch: 1,
        set: [
          [0, entry(10)],
          [1, entry(10)],
        ],
        remove: [],
      });
      await commitChunkMap(db, { volumeId, epoch: 2, set: [[0, entry(20)]], remove: [], garbage: [[0, 10]] });
      await commitChunkMap(db, { volumeId: other, epoch: 1, set: [], remove: [], garbage: [[0, 1]] });
      // A stray row naming the current generation of chunk 1 (a caller's mistake) must never come back.
      await db.insert(volumeGarbage).values({ volumeId, chunkIndex: 1, generation: 10 });
      await age(db, volumeId, 3600);
      await commitChunkMap(db, { volumeId, epoch: 3, set: [[0, entry(30)]], remove: [], garbage: [[0, 20]] }); // fresh

      const cutoff = new Date(Date.now() - 600_000);
      const expired = await listExpiredGarbage(db, volumeId, cutoff);
      expect(expired).toEqual([{ index: 0, generation: 10 }]);
      expect(await listExpiredGarbage(db, volumeId, new Date(Date.now() + 60_000))).toEqual([
        { index: 0, generation: 10 },
        { index: 0, generation: 20 },
      ]);
      expect(await deleteGarbageRows(db, volumeId, expired)).toBe(1);
      expect(await countGarbage(db, volumeId)).toBe(2); // gen 20 and the stray row
      expect(await countGarbage(db, other)).toBe(1);
    }));

  it("loads the referenced generations (current + garbage) in one snapshot", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await createVolume(db);
      await commitChunkMap(db, { volumeId, epoch: 1, set: [[3, entry(65536)]], remove: [] });
      await commitChunkMap(db, {
        volumeId,
        epoch: 2,
        set: [
          [3, entry(131072)],
          [4, entry(131072)],
        ],
        remove: [],
        garbage: [[3, 65536]],
      });
      const { epoch, referenced } = await loadReferencedGenerations(db, volumeId);
      expect(epoch).toBe(2);
      expect([...referenced].sort()).toEqual([generationKey(3, 131072), generationKey(3, 65536), generationKey(4, 131072)].sort());
      await expect(loadReferencedGenerations(db, newId("volume"))).rejects.toSatisfy((err) => isDbError(err, "VOLUME_NOT_FOUND"));
    }));

  it("keeps key slots as given and replaces them on passwd", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await createVolume(db);
      const row = await findVolumeById(db, volumeId);
      expect(row).toMatchObject({ keySlots: [slot], durability: "local", compression: "zstd" });
      const passphraseSlot: StoredKeySlot = {
        kind: "passphrase",
        kdf: { name: "scrypt", N: 1024, r: 8, p: 1, salt: "c2FsdA==" },
        nonce: "bg==",
        wrapped: "dw==",
      };
      expect((await updateVolumeKeySlots(db, volumeId, [passphraseSlot, slot])).keySlots).toEqual([passphraseSlot, slot]);
      await expect(updateVolumeKeySlots(db, newId("volume"), [slot])).rejects.toSatisfy((err) => isDbError(err, "VOLUME_NOT_FOUND"));
      await expect(updateVolumeKeySlots(db, volumeId, [])).rejects.toSatisfy((err) => isDbError(err, "INVALID_ARGUMENT"));
    }));

  it("inserts a recovered volume with its id, epoch and chunk map, or nothing", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const owner = await ensureLocalAdmin(db);
      const id = newId("volume");
      const base = { ownerId: owner.id, id, name: "back", sizeBytes: 64 * MiB, chunkSize: MiB, durability: "cloud" as const, keySlots: [slot] };
      const row = await insertRecoveredVolume(db, {
        ...base,
        epoch: 7,
        chunks: [
          [0, 7 * 65536, 10],
          [63, 3 * 65536, 20],
        ],
      });
      expect(row).toMatchObject({ id, name: "back", commitEpoch: 7, durability: "cloud", keySlots: [slot] });
      const map = await loadChunkMap(db, id);
      expect(map.epoch).toBe(7);
      expect([...map.chunks]).toEqual([
        [0, { generation: 7 * 65536, storedSize: 10 }],
        [63, { generation: 3 * 65536, storedSize: 20 }],
      ]);

      await expect(insertRecoveredVolume(db, { ...base, name: "again", epoch: 1, chunks: [] })).rejects.toSatisfy((err) => isDbError(err, "VOLUME_EXISTS"));
      await expect(insertRecoveredVolume(db, { ...base, id: newId("volume"), name: "past-end", epoch: 1, chunks: [[64, 1, 1]] })).rejects.toSatisfy((err) =>
        isDbError(err, "INVALID_ARGUMENT"),
      );
      expect(await findVolumeById(db, base.id)).toBeDefined();
    }));

  it("refuses an unknown durability or compression", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const owner = await ensureLocalAdmin(db);
      const bad = { ownerId: owner.id, name: "x", sizeBytes: MiB, chunkSize: MiB, durability: "tape" } as unknown as Parameters<typeof insertVolume>[1];
      await expect(insertVolume(db, bad)).rejects.toSatisfy((err) => isDbError(err, "INVALID_ARGUMENT"));
    }));
});
