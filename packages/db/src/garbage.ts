/**
 * What the GC job asks of the database. Garbage rows are written by commitChunkMap (same transaction
 * as the commit that superseded them); here they are read once their grace period is over and deleted
 * after their objects are gone. The orphan scan needs one consistent view of everything a volume
 * references — current generations and garbage still waiting — taken BEFORE it lists the bucket, so
 * an object that is referenced at that moment is never taken for an orphan.
 */
import { and, asc, eq, gt, lt, sql, type SQL } from "drizzle-orm";
import { executeRows, type Db } from "./client";
import { DbError } from "./errors";
import { snapshotChunks, volumeChunks, volumeGarbage, volumes } from "./schema";

export interface GarbageEntry {
  index: number;
  generation: number;
  /** The ancestor whose object this is (a clone stopped reading it); absent: the volume's own. */
  owner?: string;
}

/**
 * True (SQL) while anything still reads the object (owner, index, generation): a volume's map (its own
 * object, or a clone reading its ancestor's) or a snapshot. The GC deletes nothing for which it holds.
 */
export function objectReferenced(owner: SQL, index: SQL, generation: SQL): SQL {
  return sql`(exists (select 1 from ${volumeChunks} c where c.volume_id = ${owner} and c.owner_volume_id is null
                and c.chunk_index = ${index} and c.generation = ${generation})
           or exists (select 1 from ${volumeChunks} c where c.owner_volume_id = ${owner}
                and c.chunk_index = ${index} and c.generation = ${generation})
           or exists (select 1 from ${snapshotChunks} s where s.owner_volume_id = ${owner}
                and s.chunk_index = ${index} and s.generation = ${generation}))`;
}

/** Rows per garbage page (each page becomes one DeleteObjects call of up to 1000 keys). */
export const GARBAGE_PAGE_ROWS = 1000;

/**
 * Garbage of the volume superseded before `supersededBefore`, oldest first. A generation anything still
 * reads — a chunk map (this volume's or a clone's) or a snapshot — is never returned: its row waits
 * until the last reader lets go. Deleting it would lose data, keeping a row costs one row.
 */
export async function listExpiredGarbage(db: Db, volumeId: string, supersededBefore: Date, limit = GARBAGE_PAGE_ROWS): Promise<GarbageEntry[]> {
  const owner = sql`coalesce(${volumeGarbage.ownerVolumeId}, ${volumeGarbage.volumeId})`;
  const rows = await db
    .select({ index: volumeGarbage.chunkIndex, generation: volumeGarbage.generation, owner: volumeGarbage.ownerVolumeId })
    .from(volumeGarbage)
    .where(
      and(
        eq(volumeGarbage.volumeId, volumeId),
        lt(volumeGarbage.supersededAt, supersededBefore),
        sql`not ${objectReferenced(owner, sql`${volumeGarbage.chunkIndex}`, sql`${volumeGarbage.generation}`)}`,
      ),
    )
    .orderBy(asc(volumeGarbage.supersededAt), asc(volumeGarbage.chunkIndex), asc(volumeGarbage.generation))
    .limit(limit);
  return rows.map(({ index, generation, owner }) => (owner === null ? { index, generation } : { index, generation, owner }));
}

/** Deletes these garbage rows (after their objects were deleted). Returns how many went. */
export async function deleteGarbageRows(db: Db, volumeId: string, entries: readonly GarbageEntry[]): Promise<number> {
  if (entries.length === 0) return 0;
  const deleted = await db
    .delete(volumeGarbage)
    .where(
      and(
        eq(volumeGarbage.volumeId, volumeId),
        sql`(${volumeGarbage.chunkIndex}, ${volumeGarbage.generation}) in (select * from unnest(
          ${sql.param(entries.map((e) => e.index))}::bigint[], ${sql.param(entries.map((e) => e.generation))}::bigint[]))`,
      ),
    )
    .returning({ index: volumeGarbage.chunkIndex });
  return deleted.length;
}

/** Garbage rows of a volume (tests, stats). */
export async function countGarbage(db: Db, volumeId: string): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(volumeGarbage)
    .where(eq(volumeGarbage.volumeId, volumeId));
  return row?.n ?? 0;
}

export interface ReferencedGenerations {
  /** The volume's commit epoch in the same snapshot. */
  epoch: number;
  /** `${index}:${generation}` of every current chunk object and every garbage row. */
  referenced: Set<string>;
}

export const generationKey = (index: number, generation: number): string => `${index}:${generation}`;

/**
 * Every object under the volume's prefix that something names — its current chunk map, its recorded
 * garbage, snapshots (its own and its clones'), and clones' maps — in one snapshot, so a commit
 * landing mid-read cannot move an object from "current" to "garbage" between the reads.
 */
export async function loadReferencedGenerations(db: Db, volumeId: string): Promise<ReferencedGenerations> {
  return db.transaction(
    async (tx) => {
      const [volume] = await tx.select({ epoch: volumes.commitEpoch }).from(volumes).where(eq(volumes.id, volumeId));
      if (!volume) throw new DbError("VOLUME_NOT_FOUND", `no volume with id ${volumeId}`);
      const referenced = new Set<string>();
      let after = -1;
      for (;;) {
        const page = await tx
          .select({ index: volumeChunks.chunkIndex, generation: volumeChunks.generation })
          .from(volumeChunks)
          .where(and(eq(volumeChunks.volumeId, volumeId), gt(volumeChunks.chunkIndex, after)))
          .orderBy(asc(volumeChunks.chunkIndex))
          .limit(50_000);
        for (const row of page) referenced.add(generationKey(row.index, row.generation));
        if (page.length < 50_000) break;
        after = page[page.length - 1]!.index;
      }
      const others = await executeRows<{ index: number | string; generation: number | string }>(
        tx,
        sql`
        select chunk_index as index, generation from ${volumeGarbage} where volume_id = ${volumeId} and owner_volume_id is null
        union select chunk_index, generation from ${snapshotChunks} where owner_volume_id = ${volumeId}
        union select chunk_index, generation from ${volumeChunks} where owner_volume_id = ${volumeId}
        union select chunk_index, generation from ${volumeGarbage} where owner_volume_id = ${volumeId}`,
      );
      for (const row of others) referenced.add(generationKey(Number(row.index), Number(row.generation)));
      return { epoch: volume.epoch, referenced };
    },
    { isolationLevel: "repeatable read", accessMode: "read only" },
  );
}
