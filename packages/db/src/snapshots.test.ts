import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { commitChunkMap, loadChunkMap, type ChunkEntry } from "./chunk-map";
import type { Db } from "./client";
import { isDbError } from "./errors";
import { listExpiredGarbage, loadReferencedGenerations, generationKey } from "./garbage";
import { newId } from "./ids";
import { volumeGarbage, type StoredKeySlot } from "./schema";
import { createSnapshotRow, deleteSnapshotRow, insertCloneVolume, listSnapshots, loadSnapshotMap } from "./snapshots";
import { useTestDatabase } from "./testing/per-database";
import { DATABASE_KINDS, inRolledBackTransaction } from "./testing/test-database";
import { ensureLocalAdmin } from "./users";
import { deleteVolumeRow, insertVolume } from "./volumes";

const MiB = 1024 * 1024;
const G = 65536;
const entry = (generation: number): ChunkEntry => ({ generation, storedSize: 1000 + (generation % 1000) });
const slot: StoredKeySlot = { kind: "master", masterKeyId: "0011223344556677", nonce: "bm9uY2U=", wrapped: "d3JhcHBlZA==" };
const future = () => new Date(Date.now() + 3_600_000);

async function createVolume(db: Db, name: string): Promise<{ id: string; ownerId: string }> {
  const owner = await ensureLocalAdmin(db);
  const row = await insertVolume(db, { ownerId: owner.id, name, sizeBytes: 64 * MiB, chunkSize: MiB, keySlots: [slot] });
  return { id: row.id, ownerId: owner.id };
}

async function garbageOf(db: Db, volumeId: string) {
  return (await listExpiredGarbage(db, volumeId, future())).map((g) => `${g.owner ?? "own"}:${g.index}:${g.generation}`).sort();
}

describe.each(DATABASE_KINDS)("snapshots and clones on %s", (kind) => {
  const current = useTestDatabase(kind);

  it("pins the map at its epoch; GC keeps what it names until it is deleted", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const { id } = await createVolume(db, "base");
      await commitChunkMap(db, {
        volumeId: id,
        epoch: 1,
        set: [
          [0, entry(G)],
          [1, entry(G)],
        ],
        remove: [],
      });
      const snapshot = await createSnapshotRow(db, { id: newId("snapshot"), volumeId: id, name: "monday" });
      expect(snapshot.epoch).toBe(1);
      await expect(createSnapshotRow(db, { id: newId("snapshot"), volumeId: id, name: "monday" })).rejects.toSatisfy((e) => isDbError(e, "SNAPSHOT_EXISTS"));

      // The volume moves on: chunk 0 rewritten, chunk 1 trimmed.
      await commitChunkMap(db, {
        volumeId: id,
        epoch: 2,
        set: [[0, entry(2 * G)]],
        remove: [1],
        garbage: [
          [0, G],
          [1, G],
        ],
      });
      const map = await loadSnapshotMap(db, snapshot.id);
      expect([...map]).toEqual([
        [0, { generation: G, storedSize: entry(G).storedSize, owner: id }],
        [1, { generation: G, storedSize: entry(G).storedSize, owner: id }],
      ]);
      expect(await garbageOf(db, id)).toEqual([]); // the snapshot still reads both
      const referenced = await loadReferencedGenerations(db, id);
      expect(referenced.referenced.has(generationKey(1, G))).toBe(true);

      const [listed] = await listSnapshots(db, id);
      expect(listed).toMatchObject({ name: "monday", chunks: 2, exclusiveBytes: 2 * entry(G).storedSize });

      expect(await deleteSnapshotRow(db, snapshot.id)).toBe(true);
      expect(await garbageOf(db, id)).toEqual([`own:0:${G}`, `own:1:${G}`]);
      expect(await deleteSnapshotRow(db, snapshot.id)).toBe(false);
    }));

  it("a snapshot of an unchanged volume holds nothing only it names", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const { id } = await createVolume(db, "still");
      await commitChunkMap(db, { volumeId: id, epoch: 1, set: [[3, entry(G)]], remove: [] });
      const snapshot = await createSnapshotRow(db, { id: newId("snapshot"), volumeId: id, name: "s" });
      expect((await listSnapshots(db, id))[0]).toMatchObject({ chunks: 1, exclusiveBytes: 0 });
      await deleteSnapshotRow(db, snapshot.id);
      // Still current in the volume's map: deleting the snapshot makes nothing garbage.
      expect(await db.select().from(volumeGarbage).where(eq(volumeGarbage.volumeId, id))).toEqual([]);
    }));

  it("a clone reads its parent's objects; the parent's GC keeps them until the clone lets go", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const parent = await createVolume(db, "parent");
      await commitChunkMap(db, {
        volumeId: parent.id,
        epoch: 4,
        previousEpoch: 0,
        set: [
          [0, entry(4 * G)],
          [1, entry(4 * G)],
        ],
        remove: [],
      });
      const snapshot = await createSnapshotRow(db, { id: newId("snapshot"), volumeId: parent.id, name: "golden" });
      const clone = await insertCloneVolume(
        db,
        {
          ownerId: parent.ownerId,
          name: "child",
          sizeBytes: 64 * MiB,
          chunkSize: MiB,
          keySlots: [slot],
          clonedFrom: { volumeId: parent.id, volumeName: "parent", snapshotId: snapshot.id, snapshotName: "golden" },
        },
        snapshot.id,
      );
      expect(clone.commitEpoch).toBe(4);
      const cloneMap = await loadChunkMap(db, clone.id);
      expect(cloneMap.chunks.get(0)).toEqual({ ...entry(4 * G), owner: parent.id });

      // The parent rewrites both chunks and its snapshot goes: the clone still reads the old objects.
      await commitChunkMap(db, {
        volumeId: parent.id,
        epoch: 5,
        set: [
          [0, entry(5 * G)],
          [1, entry(5 * G)],
        ],
        remove: [],
        garbage: [
          [0, 4 * G],
          [1, 4 * G],
        ],
      });
      await deleteSnapshotRow(db, snapshot.id);
      expect(await garbageOf(db, parent.id)).toEqual([]);

      // The clone rewrites chunk 0: its own object now; the parent's old one is garbage the clone records.
      await commitChunkMap(db, { volumeId: clone.id, epoch: 5, set: [[0, entry(5 * G + 7)]], remove: [], garbage: [[0, 4 * G, parent.id]] });
      expect((await loadChunkMap(db, clone.id)).chunks.get(0)).toEqual(entry(5 * G + 7));
      // Both rows name the same object now; listing either side returns it once nothing reads it.
      expect(await garbageOf(db, parent.id)).toEqual([`own:0:${4 * G}`]);
      expect(await garbageOf(db, clone.id)).toEqual([`${parent.id}:0:${4 * G}`]);

      // The parent is deleted: the clone still names chunk 1's object under the parent's prefix.
      await deleteVolumeRow(db, parent.id);
      expect((await loadChunkMap(db, clone.id)).chunks.get(1)).toEqual({ ...entry(4 * G), owner: parent.id });
    }));
});
