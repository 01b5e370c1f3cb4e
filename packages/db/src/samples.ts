/** Chart samples written by the gateway that holds a volume, read for the dashboard's charts. */
import { and, asc, eq, gte, lt } from "drizzle-orm";
import type { Db } from "./client";
import { volumeSamples, type VolumeSampleRow } from "./schema";

export async function insertVolumeSamples(db: Db, rows: VolumeSampleRow[]): Promise<void> {
  if (rows.length === 0) return;
  // A sample for an id deleted meanwhile would break the foreign key; the writer inserts row by row then.
  await db.insert(volumeSamples).values(rows).onConflictDoNothing();
}

export async function listVolumeSamples(db: Db, volumeId: string, since: Date): Promise<VolumeSampleRow[]> {
  return db
    .select()
    .from(volumeSamples)
    .where(and(eq(volumeSamples.volumeId, volumeId), gte(volumeSamples.at, since)))
    .orderBy(asc(volumeSamples.at));
}

/** Deletes samples older than `before` (the writer calls this now and then: samples are kept 7 days). */
export async function pruneVolumeSamples(db: Db, before: Date): Promise<void> {
  await db.delete(volumeSamples).where(lt(volumeSamples.at, before));
}
