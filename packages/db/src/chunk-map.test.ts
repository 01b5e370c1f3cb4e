import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { commitChunkMap, loadChunkMap, type ChunkEntry } from "./chunk-map";
import type { Db } from "./client";
import { isDbError } from "./errors";
import { newId } from "./ids";
import { volumeChunks, volumeGarbage, volumes } from "./schema";
import { useTestDatabase } from "./testing/per-database";
import { DATABASE_KINDS, inRolledBackTransaction } from "./testing/test-database";
import { ensureLocalAdmin } from "./users";
import { deleteVolumeRow, insertVolume } from "./volumes";

const MiB = 1024 * 1024;

async function createVolume(db: Db, name = "vol"): Promise<string> {
  const owner = await ensureLocalAdmin(db);
  const volume = await insertVolume(db, { ownerId: owner.id, name, sizeBytes: 1024 * 1024 * MiB, chunkSize: MiB });
  return volume.id;
}

const entry = (generation: number, storedSize = 1000 + generation): ChunkEntry => ({ generation, storedSize });

async function rowCount(db: Db, volumeId: string): Promise<number> {
  return (await db.select().from(volumeChunks).where(eq(volumeChunks.volumeId, volumeId))).length;
}

describe.each(DATABASE_KINDS)("chunk map on %s", (kind) => {
  const current = useTestDatabase(kind);

  it("starts empty at epoch 0, and commits round-trip through load", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await createVolume(db);
      expect(await loadChunkMap(db, volumeId)).toEqual({ epoch: 0, fencingToken: 0, chunks: new Map() });

      const big = 2 ** 40; // chunk indexes and generations beyond 32 bits stay exact
      await commitChunkMap(db, {
        volumeId,
        epoch: 1,
        set: [
          [0, entry(1)],
          [7, entry(1)],
          [big, entry(big, 17)],
        ],
        remove: [],
      });
      expect(await loadChunkMap(db, volumeId)).toEqual({
        epoch: 1,
        fencingToken: 0,
        chunks: new Map([
          [0, entry(1)],
          [7, entry(1)],
          [big, entry(big, 17)],
        ]),
      });

      // Overwrite one, drop one, add one; removing a chunk that has no row is fine.
      await commitChunkMap(db, {
        volumeId,
        epoch: 2,
        set: [
          [7, entry(2, 5)],
          [9, entry(2)],
        ],
        remove: [0, 12345],
      });
      const map = await loadChunkMap(db, volumeId);
      expect(map.epoch).toBe(2);
      expect([...map.chunks]).toEqual([
        [7, entry(2, 5)],
        [9, entry(2)],
        [big, entry(big, 17)],
      ]);

      // An empty commit still moves the epoch (a FLUSH with nothing new).
      await commitChunkMap(db, { volumeId, epoch: 3, set: [], remove: [] });
      expect((await loadChunkMap(db, volumeId)).epoch).toBe(3);
    }));

  it("refuses a stale or skipped epoch and changes nothing", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await createVolume(db);
      await commitChunkMap(db, {
        volumeId,
        epoch: 1,
        set: [
          [1, entry(1)],
          [2, entry(1)],
        ],
        remove: [],
      });
      const before = await loadChunkMap(db, volumeId);

      for (const epoch of [1, 3]) {
        const err: unknown = await commitChunkMap(db, {
          volumeId,
          epoch,
          set: [
            [1, entry(9)],
            [5, entry(9)],
          ],
          remove: [2],
          garbage: [[1, 1]],
        }).catch((e) => e);
        expect(isDbError(err, "COMMIT_CONFLICT")).toBe(true);
        expect((err as Error).message).toContain(`the volume is at epoch 1, expected ${epoch - 1}`);
        expect(await loadChunkMap(db, volumeId)).toEqual(before);
        expect(await db.select().from(volumeGarbage).where(eq(volumeGarbage.volumeId, volumeId))).toEqual([]);
      }
    }));

  it("lets a commit skip epochs when it names the epoch it builds on", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await createVolume(db);
      await commitChunkMap(db, { volumeId, epoch: 1, set: [[1, entry(1)]], remove: [] });
      // Epochs 2 and 3 went to uploads ahead of this commit: it builds on 1 and creates 4.
      await commitChunkMap(db, { volumeId, previousEpoch: 1, epoch: 4, set: [[1, entry(4)]], remove: [] });
      expect(await loadChunkMap(db, volumeId)).toMatchObject({ epoch: 4 });
      const before = await loadChunkMap(db, volumeId);
      const stale: unknown = await commitChunkMap(db, { volumeId, previousEpoch: 1, epoch: 6, set: [[1, entry(6)]], remove: [] }).catch((e) => e);
      expect(isDbError(stale, "COMMIT_CONFLICT")).toBe(true);
      expect((stale as Error).message).toContain("the volume is at epoch 4, expected 1");
      await expect(commitChunkMap(db, { volumeId, previousEpoch: 4, epoch: 4, set: [], remove: [] })).rejects.toSatisfy((err) =>
        isDbError(err, "INVALID_ARGUMENT"),
      );
      expect(await loadChunkMap(db, volumeId)).toEqual(before);
    }));

  it("refuses a commit whose fencing token is stale and changes nothing", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await createVolume(db);
      await db.update(volumes).set({ fencingToken: 7 }).where(eq(volumes.id, volumeId)); // a lease was taken
      await commitChunkMap(db, { volumeId, epoch: 1, fencingToken: 7, set: [[1, entry(1)]], remove: [] });
      const before = await loadChunkMap(db, volumeId);
      expect(before.fencingToken).toBe(7);

      const err: unknown = await commitChunkMap(db, { volumeId, epoch: 2, fencingToken: 6, set: [[1, entry(2)]], remove: [] }).catch((e) => e);
      expect(isDbError(err, "COMMIT_CONFLICT")).toBe(true);
      expect((err as Error).message).toContain("fencing token 6 is stale (the volume's is 7)");
      expect(await loadChunkMap(db, volumeId)).toEqual(before);

      // Without a token the epoch alone guards (the embedded default has no leases).
      await commitChunkMap(db, { volumeId, epoch: 2, set: [[1, entry(2)]], remove: [] });
      expect((await loadChunkMap(db, volumeId)).chunks.get(1)).toEqual(entry(2));
    }));

  it("refuses a commit to a volume that is gone, and a load of one", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const missing = newId("volume");
      await expect(commitChunkMap(db, { volumeId: missing, epoch: 1, set: [], remove: [] })).rejects.toSatisfy(
        (err) => isDbError(err, "COMMIT_CONFLICT") && err.message.includes("no longer exists"),
      );
      await expect(loadChunkMap(db, missing)).rejects.toSatisfy((err) => isDbError(err, "VOLUME_NOT_FOUND"));
    }));

  it.each([
    ["epoch 0", { epoch: 0, set: [], remove: [] }],
    [
      "a chunk set twice",
      {
        epoch: 1,
        set: [
          [1, entry(1)],
          [1, entry(2)],
        ],
        remove: [],
      },
    ],
    ["a chunk set and removed", { epoch: 1, set: [[1, entry(1)]], remove: [1] }],
    ["a negative index", { epoch: 1, set: [], remove: [-1] }],
    ["a fractional generation", { epoch: 1, set: [[1, entry(1.5)]], remove: [] }],
  ] as const)("refuses a commit with %s before touching the database", (_what, commit) =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await createVolume(db);
      await expect(commitChunkMap(db, { volumeId, ...commit })).rejects.toSatisfy((err) => isDbError(err, "INVALID_ARGUMENT"));
      expect((await loadChunkMap(db, volumeId)).epoch).toBe(0);
    }),
  );

  it("deletes a volume's chunk rows with the volume", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const doomed = await createVolume(db, "doomed");
      const kept = await createVolume(db, "kept");
      await commitChunkMap(db, {
        volumeId: doomed,
        epoch: 1,
        set: [
          [1, entry(1)],
          [2, entry(1)],
        ],
        remove: [],
      });
      await commitChunkMap(db, { volumeId: kept, epoch: 1, set: [[1, entry(1)]], remove: [] });
      expect(await deleteVolumeRow(db, doomed)).toBe(true);
      expect(await rowCount(db, doomed)).toBe(0);
      expect(await rowCount(db, kept)).toBe(1);
    }));

  it("commits and loads more than 100k chunks (several batches and pages)", () =>
    inRolledBackTransaction(current().db, async (db) => {
      const volumeId = await createVolume(db);
      const count = 131_072 + 17; // 128 GiB of 1 MiB chunks, and a ragged last page
      // Deterministic contents: every third chunk skipped (holes), generation and size vary by index.
      const set: [number, ChunkEntry][] = [];
      for (let i = 0; set.length < count; i++) if (i % 3 !== 2) set.push([i, entry(1 + (i % 5), 4096 + (i % 1000))]);
      await commitChunkMap(db, { volumeId, epoch: 1, set, remove: [] });

      const map = await loadChunkMap(db, volumeId);
      expect(map.epoch).toBe(1);
      expect(map.chunks.size).toBe(count);
      expect([...map.chunks]).toEqual(set); // also proves the load comes back in chunk order

      // Remove half in one commit (several DELETE batches).
      const remove = set.filter(([index]) => index % 2 === 0).map(([index]) => index);
      await commitChunkMap(db, { volumeId, epoch: 2, set: [], remove });
      const after = await loadChunkMap(db, volumeId);
      expect(after.chunks.size).toBe(count - remove.length);
      expect([...after.chunks.keys()].every((index) => index % 2 === 1)).toBe(true);
    }));

  it("lets exactly one of two racing commits of the same epoch win", async () => {
    // Outside a test transaction: the two commits need their own transactions to race.
    const volumeId = await createVolume(current().db, "race");
    try {
      const results = await Promise.allSettled([
        commitChunkMap(current().db, { volumeId, epoch: 1, set: [[1, entry(1)]], remove: [] }),
        commitChunkMap(current().db, {
          volumeId,
          epoch: 1,
          set: [
            [1, entry(2)],
            [2, entry(2)],
          ],
          remove: [],
        }),
      ]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(isDbError(lost[0]!.reason, "COMMIT_CONFLICT")).toBe(true);
      const map = await loadChunkMap(current().db, volumeId);
      const winner = results.indexOf(won[0]!);
      expect(map.chunks).toEqual(
        winner === 0
          ? new Map([[1, entry(1)]])
          : new Map([
              [1, entry(2)],
              [2, entry(2)],
            ]),
      );
    } finally {
      await deleteVolumeRow(current().db, volumeId);
    }
  });
});
