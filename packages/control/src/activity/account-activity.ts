/**
 * The account-wide activity view and the events only it had before: sign-in and sign-out (next-auth in
 * the web app calls these), and a device attaching or detaching a volume (the gateway records those:
 * attach-activity.ts there). Everything a verb records per volume shows here too, with its volume name.
 */
import { insertActivity, listAccountActivityRows, type Db } from "@stratus/db";
import type { AnonymousContext, Runtime, ServiceContext } from "../context";
import { activityView, type ActivityView } from "./activity";

/** A successful sign-in (the password was right): who, and from which address. */
export async function recordSignIn(ctx: AnonymousContext, userId: string): Promise<void> {
  await insertActivity(ctx.runtime.database.db, {
    ownerId: userId,
    actorId: userId,
    via: "session",
    action: "account.signin",
    detail: ctx.requestMeta?.userAgent ? { userAgent: ctx.requestMeta.userAgent.slice(0, 200) } : {},
    ip: ctx.requestMeta?.ip ?? null,
  });
}

/** A session ended by signing out (an expired session records nothing: nobody acted). */
export async function recordSignOut(runtime: Runtime, userId: string): Promise<void> {
  await insertActivity(runtime.database.db, { ownerId: userId, actorId: userId, via: "session", action: "account.signout" });
}

export interface AttachActivityEntry {
  volumeId: string;
  volumeName: string;
  ownerId: string;
  /** The lease's holder name: the device credential's name, or "local" on the loopback. */
  holder: string;
  /** null: the local admin's plaintext loopback. */
  deviceCredentialId: string | null;
  clientAddress: string | null;
}

/**
 * A device's first connection to a volume opened ("volume.attached") or its last one closed
 * ("volume.detached"). Not the detach verb ("volume.detach"), which is someone asking for it.
 */
export async function recordAttachActivity(db: Db, kind: "attached" | "detached", entry: AttachActivityEntry): Promise<void> {
  await insertActivity(db, {
    ownerId: entry.ownerId,
    actorId: null,
    via: entry.deviceCredentialId === null ? "local" : "device",
    volumeId: entry.volumeId,
    volumeName: entry.volumeName,
    action: `volume.${kind}`,
    detail: { holder: entry.holder, ...(entry.deviceCredentialId === null ? {} : { deviceCredentialId: entry.deviceCredentialId }) },
    ip: entry.clientAddress,
  });
}

/** This account's activity, newest first (the last 200 entries). */
export async function listAccountActivity(ctx: ServiceContext): Promise<ActivityView[]> {
  return (await listAccountActivityRows(ctx.runtime.database.db, ctx.actor.userId)).map(activityView);
}
