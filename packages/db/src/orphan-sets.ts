/**
 * Orphan set rows: what the dashboard, REST and CLI see of the uncommitted data a fenced gateway kept
 * aside on its disk. The gateway records a row when it makes a set (best effort) and reconciles its
 * rows with its folders at start; a discard marks the row, and the holding gateway deletes the folder
 * and then the row. Rows are keyed by (gateway, folder name), so recording twice is harmless.
 */
import { and, desc, eq, isNull } from "drizzle-orm";
import type { Db } from "./client";
import { newId } from "./ids";
import { orphanSets, volumes, type OrphanSetRow } from "./schema";

export interface NewOrphanSet {
  volumeId: string;
  gatewayId: string;
  dirName: string;
  fencingToken: number;
  bytes: number;
  dirtyChunks: number;
  reason: string;
  orphanedAt: Date;
}

/**
 * Records a set (or refreshes the figures of the row already naming this gateway's folder). Returns
 * undefined when the volume no longer exists: a deleted volume's sets are not kept.
 */
export async function recordOrphanSet(db: Db, input: NewOrphanSet): Promise<OrphanSetRow | undefined> {
  const [volume] = await db.select({ id: volumes.id }).from(volumes).where(eq(volumes.id, input.volumeId));
  if (!volume) return undefined;
  const [row] = await db
    .insert(orphanSets)
    .values({ id: newId("orphanSet"), ...input })
    .onConflictDoUpdate({
      target: [orphanSets.gatewayId, orphanSets.dirName],
      set: { bytes: input.bytes, dirtyChunks: input.dirtyChunks },
    })
    .returning();
  return row;
}

/** A volume's sets, newest first; discarded ones (folder not deleted yet) only with `includeDiscarded`. */
export async function listOrphanSets(db: Db, volumeId: string, options: { includeDiscarded?: boolean } = {}): Promise<OrphanSetRow[]> {
  const where = options.includeDiscarded === true ? eq(orphanSets.volumeId, volumeId) : and(eq(orphanSets.volumeId, volumeId), isNull(orphanSets.discardedAt));
  return db.select().from(orphanSets).where(where).orderBy(desc(orphanSets.orphanedAt));
}

/** Every live (not discarded) set of an owner's volumes, newest first, with the volume's name. */
export async function listOwnerOrphanSets(db: Db, ownerId: string): Promise<Array<OrphanSetRow & { volumeName: string }>> {
  const rows = await db
    .select({ set: orphanSets, volumeName: volumes.name })
    .from(orphanSets)
    .innerJoin(volumes, eq(volumes.id, orphanSets.volumeId))
    .where(and(eq(volumes.ownerId, ownerId), isNull(orphanSets.discardedAt)))
    .orderBy(desc(orphanSets.orphanedAt));
  return rows.map(({ set, volumeName }) => ({ ...set, volumeName }));
}

/** Every row of one gateway, discarded ones included (its start reconciles them with its folders). */
export async function listGatewayOrphanSets(db: Db, gatewayId: string): Promise<OrphanSetRow[]> {
  return db.select().from(orphanSets).where(eq(orphanSets.gatewayId, gatewayId));
}

export async function findOrphanSet(db: Db, id: string): Promise<OrphanSetRow | undefined> {
  const [row] = await db.select().from(orphanSets).where(eq(orphanSets.id, id));
  return row;
}

/** Marks a set discarded (its folder is deleted by its gateway); undefined when already gone or discarded. */
export async function markOrphanSetDiscarded(db: Db, id: string, input: { by: string; now: Date }): Promise<OrphanSetRow | undefined> {
  const [row] = await db
    .update(orphanSets)
    .set({ discardedAt: input.now, discardedBy: input.by })
    .where(and(eq(orphanSets.id, id), isNull(orphanSets.discardedAt)))
    .returning();
  return row;
}

export async function markOrphanSetExported(db: Db, id: string, now: Date): Promise<void> {
  await db.update(orphanSets).set({ lastExportedAt: now }).where(eq(orphanSets.id, id));
}

/** Deletes a row (its folder is gone); true when there was one. */
export async function deleteOrphanSet(db: Db, id: string): Promise<boolean> {
  const deleted = await db.delete(orphanSets).where(eq(orphanSets.id, id)).returning({ id: orphanSets.id });
  return deleted.length > 0;
}
