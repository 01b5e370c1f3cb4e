/**
 * Garbage collection of one volume's bucket objects: superseded generations past their grace
 * period, then orphans no commit references. The `gc` job's body, without BullMQ, so tests can race
 * it against commits directly. Old manifests are pruned by writeManifest itself.
 */
import { deleteGarbageRows, generationKey, listExpiredGarbage, loadReferencedGenerations, type Db } from "@stratus/db";
import { chunkKey, chunkPrefix, GENERATIONS_PER_EPOCH, parseChunkKey, type ObjectStore } from "@stratus/storage";
import type { GcResult } from "@stratus/control/jobs";

export interface GcOptions {
  db: Db;
  store: ObjectStore;
  volumeId: string;
  /** Garbage superseded longer ago than this is deleted. */
  graceMs: number;
  now?: () => number;
}

export async function collectVolumeGarbage(options: GcOptions): Promise<GcResult> {
  const garbageDeleted = await deleteExpiredGarbage(options);
  const orphansDeleted = await deleteOrphans(options);
  return { garbageDeleted, orphansDeleted };
}

/**
 * Generations a commit superseded (recorded in volume_garbage in the commit's transaction) whose grace
 * period is over: readers that loaded an older map may fetch them until then. Objects first, rows
 * after: a crash in between leaves rows whose objects are gone, and deleting a missing object is fine.
 */
async function deleteExpiredGarbage({ db, store, volumeId, graceMs, now = Date.now }: GcOptions): Promise<number> {
  const cutoff = new Date(now() - graceMs);
  let deleted = 0;
  for (;;) {
    const page = await listExpiredGarbage(db, volumeId, cutoff);
    if (page.length === 0) return deleted;
    // An ancestor's object a clone stopped reading lives under the ancestor's prefix.
    await store.deleteMany(page.map((entry) => chunkKey(entry.owner ?? volumeId, entry.index, entry.generation)));
    deleted += await deleteGarbageRows(db, volumeId, page);
  }
}

/**
 * Chunk objects no commit references: uploads of a commit that never landed (crash, fenced writer,
 * uploads ahead of a commit that a crash left). Safety rests on one snapshot taken BEFORE listing:
 * the epoch E and every generation that is current or garbage. Commits only reference generations of
 * an epoch newer than the one they build on (generation = epoch * 65536 + salt; uploads ahead are
 * named above the last landed epoch, see storage's write-behind.ts), so a listed object below
 * E * 65536 that the snapshot does not name is never referenced again; anything above is left alone.
 */
async function deleteOrphans({ db, store, volumeId }: GcOptions): Promise<number> {
  const { epoch, referenced } = await loadReferencedGenerations(db, volumeId);
  const below = epoch * GENERATIONS_PER_EPOCH;
  let orphansDeleted = 0;
  let startAfter: string | undefined;
  const prefix = chunkPrefix(volumeId);
  for (;;) {
    const page = await store.list({ prefix, startAfter, limit: 1000 });
    const orphans = page.objects
      .map((object) => ({ key: object.key, parts: parseChunkKey(object.key) }))
      .filter(({ parts }) => parts && parts.volumeId === volumeId && parts.generation < below && !referenced.has(generationKey(parts.index, parts.generation)))
      .map(({ key }) => key);
    if (orphans.length > 0) {
      await store.deleteMany(orphans);
      orphansDeleted += orphans.length;
    }
    if (!page.truncated || page.objects.length === 0) break;
    startAfter = page.objects.at(-1)!.key;
  }
  return orphansDeleted;
}
