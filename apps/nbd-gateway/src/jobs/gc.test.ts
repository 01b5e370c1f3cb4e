import { commitChunkMap, ensureLocalAdmin, insertVolume, loadChunkMap, type Database } from "@stratus/db";
import { createTestDatabase, type TestDatabase } from "@stratus/db/testing";
import { chunkKey, chunkPrefix, MemoryObjectStore, type ObjectStore } from "@stratus/storage";
import { seededRandom } from "@stratus/storage/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GENERATIONS_PER_EPOCH } from "@stratus/storage";
import { collectVolumeGarbage } from "./gc";

const MiB = 2 ** 20;
const CHUNKS = 12;

/** A store that yields a seeded number of event-loop turns around every operation: seeded interleavings. */
function jitteryStore(inner: ObjectStore, random: () => number): ObjectStore {
  const pause = async () => {
    for (let i = Math.floor(random() * 4); i > 0; i--) await new Promise((resolve) => setImmediate(resolve));
  };
  const wrap =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      await pause();
      const result = await fn(...args);
      await pause();
      return result;
    };
  return {
    put: wrap(inner.put.bind(inner)),
    get: wrap(inner.get.bind(inner)),
    head: wrap(inner.head.bind(inner)),
    deleteMany: wrap(inner.deleteMany.bind(inner)),
    list: wrap(inner.list.bind(inner)),
    close: () => inner.close(),
  };
}

async function keysOf(store: ObjectStore, prefix: string): Promise<string[]> {
  return (await store.list({ prefix, limit: 100_000 })).objects.map((o) => o.key);
}

describe("GC against commits", () => {
  let fixture: TestDatabase;
  let database: Database;
  let ownerId: string;
  beforeAll(async () => {
    fixture = await createTestDatabase("postgres");
    database = await fixture.open();
    ownerId = (await ensureLocalAdmin(database.db)).id;
  });
  afterAll(() => fixture?.dispose());

  it.each(Array.from({ length: 24 }, (_, seed) => seed + 1))(
    "never deletes an object a commit references (seed %i, racing commits, crashed commits and GC with no grace)",
    async (seed) => {
      const random = seededRandom(seed);
      const memory = new MemoryObjectStore();
      const store = jitteryStore(memory, random);
      const { db } = database;
      const volumeId = (await insertVolume(db, { ownerId, name: `race-${seed}`, sizeBytes: CHUNKS * MiB, chunkSize: MiB })).id;

      // The committer models the Volume's protocol: upload new generations of epoch+1, then one commit
      // naming the superseded generations as garbage; sometimes it "crashes" after uploading (orphans).
      const committer = async (rounds: number) => {
        for (let round = 0; round < rounds; round++) {
          const map = await loadChunkMap(db, volumeId);
          const epoch = map.epoch + 1;
          const generation = epoch * GENERATIONS_PER_EPOCH + seed;
          const set: [number, { generation: number; storedSize: number }][] = [];
          const remove: number[] = [];
          const garbage: [number, number][] = [];
          for (let index = 0; index < CHUNKS; index++) {
            const roll = random();
            if (roll < 0.4) {
              await store.put(chunkKey(volumeId, index, generation), Buffer.from(`${index}@${generation}`));
              set.push([index, { generation, storedSize: 10 }]);
            } else if (roll < 0.5 && map.chunks.has(index)) {
              remove.push(index);
            } else continue;
            const previous = map.chunks.get(index);
            if (previous) garbage.push([index, previous.generation]);
          }
          if (random() < 0.2) continue; // crashed before the commit: its uploads are orphans
          await commitChunkMap(db, { volumeId, epoch, set, remove, garbage });
          // Right after the commit, every object it references exists.
          const committed = await loadChunkMap(db, volumeId);
          for (const [index, ref] of committed.chunks) {
            expect(await memory.head(chunkKey(volumeId, index, ref.generation)), `seed ${seed} chunk ${index}`).toBeDefined();
          }
        }
      };
      const collector = async (runs: number) => {
        for (let run = 0; run < runs; run++) await collectVolumeGarbage({ db, store, volumeId, graceMs: 0 });
      };
      await Promise.all([committer(10), collector(6)]);

      // Quiet now. Uploads of a crashed last round may still look like a commit in flight (generation at
      // or above epoch * 65536); two more commits put them below the line. Then a GC leaves exactly the
      // referenced generations.
      for (let i = 0; i < 2; i++) {
        const { epoch } = await loadChunkMap(db, volumeId);
        await commitChunkMap(db, { volumeId, epoch: epoch + 1, set: [], remove: [] });
      }
      await collectVolumeGarbage({ db, store, volumeId, graceMs: 0 });
      const final = await loadChunkMap(db, volumeId);
      const expected = [...final.chunks].map(([index, ref]) => chunkKey(volumeId, index, ref.generation)).sort();
      expect(await keysOf(memory, chunkPrefix(volumeId))).toEqual(expected);
    },
  );

  it("keeps garbage inside its grace period and the uploads of a commit in flight", async () => {
    const memory = new MemoryObjectStore();
    const { db } = database;
    const volumeId = (await insertVolume(db, { ownerId, name: "grace", sizeBytes: CHUNKS * MiB, chunkSize: MiB })).id;
    const g1 = GENERATIONS_PER_EPOCH;
    const g2 = 2 * GENERATIONS_PER_EPOCH;
    await memory.put(chunkKey(volumeId, 0, g1), Buffer.from("a"));
    await commitChunkMap(db, { volumeId, epoch: 1, set: [[0, { generation: g1, storedSize: 1 }]], remove: [] });
    await memory.put(chunkKey(volumeId, 0, g2), Buffer.from("b"));
    await commitChunkMap(db, { volumeId, epoch: 2, set: [[0, { generation: g2, storedSize: 1 }]], remove: [], garbage: [[0, g1]] });
    await memory.put(chunkKey(volumeId, 1, 3 * GENERATIONS_PER_EPOCH), Buffer.from("in flight")); // epoch 3 not committed yet
    await memory.put(chunkKey(volumeId, 2, 1), Buffer.from("orphan of an old crash"));

    expect(await collectVolumeGarbage({ db, store: memory, volumeId, graceMs: 600_000 })).toEqual({ garbageDeleted: 0, orphansDeleted: 1 });
    expect(await keysOf(memory, chunkPrefix(volumeId))).toEqual([
      chunkKey(volumeId, 0, g1),
      chunkKey(volumeId, 0, g2),
      chunkKey(volumeId, 1, 3 * GENERATIONS_PER_EPOCH),
    ]);
    // Eleven minutes later the garbage is past its grace.
    const later = () => Date.now() + 11 * 60_000;
    expect(await collectVolumeGarbage({ db, store: memory, volumeId, graceMs: 600_000, now: later })).toEqual({ garbageDeleted: 1, orphansDeleted: 0 });
    expect(await keysOf(memory, chunkPrefix(volumeId))).toEqual([chunkKey(volumeId, 0, g2), chunkKey(volumeId, 1, 3 * GENERATIONS_PER_EPOCH)]);
  });
});
