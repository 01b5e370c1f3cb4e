/**
 * Changing a volume's size. Growing only changes the row. Shrinking also moves every chunk past the new
 * end out of the chunk map into volume_garbage (the GC job deletes their objects after the grace
 * period) and moves the epoch forward, all in one transaction, so the map never names a chunk beyond
 * the end. Callers make sure no engine has the volume open while it shrinks.
 */
import { and, eq, gte, sql } from "drizzle-orm";
import type { Db } from "./client";
import { DbError } from "./errors";
import { volumeChunks, volumes, type VolumeRow } from "./schema";

export interface ResizeOutcome {
  row: VolumeRow;
  /** Chunk objects that became garbage (shrink only). */
  chunksFreed: number;
}

export async function resizeVolumeRow(db: Db, volumeId: string, sizeBytes: number): Promise<ResizeOutcome> {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) throw new DbError("INVALID_ARGUMENT", `invalid size ${sizeBytes}`);
  return db.transaction(async (tx) => {
    const [current] = await tx.select().from(volumes).where(eq(volumes.id, volumeId)).for("update");
    if (!current) throw new DbError("VOLUME_NOT_FOUND", `no volume with id ${volumeId}`);
    let chunksFreed = 0;
    let epoch = current.commitEpoch;
    if (sizeBytes < current.sizeBytes) {
      const firstGone = Math.ceil(sizeBytes / current.chunkSize);
      const gone = and(eq(volumeChunks.volumeId, volumeId), gte(volumeChunks.chunkIndex, firstGone));
      // Into the garbage first (same rows), then out of the map.
      await tx.execute(sql`insert into volume_garbage (volume_id, chunk_index, generation)
        select volume_id, chunk_index, generation from volume_chunks
        where volume_id = ${volumeId} and chunk_index >= ${firstGone}
        on conflict do nothing`);
      const deleted = await tx.delete(volumeChunks).where(gone).returning({ index: volumeChunks.chunkIndex });
      chunksFreed = deleted.length;
      epoch += 1;
    }
    const [row] = await tx.update(volumes).set({ sizeBytes, commitEpoch: epoch }).where(eq(volumes.id, volumeId)).returning();
    return { row: row!, chunksFreed };
  });
}
