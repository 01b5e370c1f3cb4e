/**
 * What the GC job asks of the database. Garbage rows are written by commitChunkMap (same transaction
 * as the commit that superseded them); here they are read once their grace period is over and deleted
 * after their objects are gone. The orphan scan needs one consistent view of everything a volume
 * references — current generations and garbage still waiting — taken BEFORE it lists the bucket, so
 * an object that is referenced at that moment is never taken for an orphan.
 */
import { and, asc, eq, gt, lt, sql } from "drizzle-orm";
import type { Db } from "./client";
import { DbError } from "./errors";
import { volumeChunks, volumeGarbage, volumes } from "./schema";

export interface GarbageEntry {
  index: number;
  generation: number;
}

/** Rows per garbage page (each page becomes one DeleteObjects call of up to 1000 keys). */
export const GARBAGE_PAGE_ROWS = 1000;

/**
 * Garbage of the volume superseded before `supersededBefore`, oldest first. A generation that is the
 * chunk's current one is never returned, whatever a caller recorded by mistake: deleting it would
 * lose data, keeping a stray row costs one row.
 */
export async function listExpiredGarbage(db: Db, volumeId: string, supersededBefore: Date, limit = GARBAGE_PAGE_ROWS): Promise<GarbageEntry[]> {
  return db
    .select({ index: volumeGarbage.chunkIndex, generation: volumeGarbage.generation })
    .from(volumeGarbage)
    .where(
      and(
        eq(volumeGarbage.volumeId, volumeId),
        lt(volumeGarbage.supersededAt, supersededBefore),
        sql`not exists (select 1 from ${volumeChunks} c where c.volume_id = ${volumeGarbage.volumeId}
              and c.chunk_index = ${volumeGarbage.chunkIndex} and c.generation = ${volumeGarbage.generation})`,
      ),
    )
    .orderBy(asc(volumeGarbage.supersededAt), asc(volumeGarbage.chunkIndex), asc(volumeGarbage.generation))
    .limit(limit);
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
 * Everything the volume references — current chunk map and recorded garbage — in one snapshot, so a
 * commit landing mid-read cannot move an object from "current" to "garbage" between the two reads.
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
      const garbage = await tx
        .select({ index: volumeGarbage.chunkIndex, generation: volumeGarbage.generation })
        .from(volumeGarbage)
        .where(eq(volumeGarbage.volumeId, volumeId));
      for (const row of garbage) referenced.add(generationKey(row.index, row.generation));
      return { epoch: volume.epoch, referenced };
    },
    { isolationLevel: "repeatable read", accessMode: "read only" },
  );
}
