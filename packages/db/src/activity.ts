/** The activity log: appended by verbs that change state, read by the volume's owner. */
import { and, desc, eq } from "drizzle-orm";
import type { Db } from "./client";
import { activityLog, type ActivityRow } from "./schema";

export type NewActivity = Omit<typeof activityLog.$inferInsert, "id" | "at">;

export async function insertActivity(db: Db, entry: NewActivity): Promise<void> {
  await db.insert(activityLog).values(entry);
}

export async function listVolumeActivityRows(db: Db, ownerId: string, volumeId: string, limit = 100): Promise<ActivityRow[]> {
  return db
    .select()
    .from(activityLog)
    .where(and(eq(activityLog.ownerId, ownerId), eq(activityLog.volumeId, volumeId)))
    .orderBy(desc(activityLog.at), desc(activityLog.id))
    .limit(limit);
}

/** Everything this owner's account saw, newest first: volumes, sign-ins, attaches, tokens, devices. */
export async function listAccountActivityRows(db: Db, ownerId: string, limit = 200): Promise<ActivityRow[]> {
  return db.select().from(activityLog).where(eq(activityLog.ownerId, ownerId)).orderBy(desc(activityLog.at), desc(activityLog.id)).limit(limit);
}

/** The newest activity of this owner for a volume name and action (e.g. the last delete of NAME). */
export async function findLatestActivityByName(db: Db, ownerId: string, volumeName: string, action: string): Promise<ActivityRow | undefined> {
  const [row] = await db
    .select()
    .from(activityLog)
    .where(and(eq(activityLog.ownerId, ownerId), eq(activityLog.volumeName, volumeName), eq(activityLog.action, action)))
    .orderBy(desc(activityLog.at), desc(activityLog.id))
    .limit(1);
  return row;
}
