/** Recording and reading "who did what when". Recorded by verbs after a state change succeeded. */
import { insertActivity, type ActivityRow } from "@stratus/db";
import type { ServiceContext } from "../context";

export interface ActivityEntry {
  ownerId: string;
  action: string;
  volumeId?: string;
  volumeName?: string;
  /** Names, sizes, scopes: never a secret. */
  detail?: Record<string, unknown>;
}

export async function recordActivity(ctx: ServiceContext, entry: ActivityEntry): Promise<void> {
  await insertActivity(ctx.runtime.database.db, {
    ownerId: entry.ownerId,
    actorId: ctx.actor.userId,
    via: ctx.actor.via,
    tokenId: ctx.actor.tokenId ?? null,
    volumeId: entry.volumeId ?? null,
    volumeName: entry.volumeName ?? null,
    action: entry.action,
    detail: entry.detail ?? {},
    ip: ctx.requestMeta?.ip ?? null,
  });
}

export interface ActivityView {
  id: number;
  at: string;
  action: string;
  /** "session", "token", "local" (the CLI or loopback NBD on the server's machine) or "device" (NBD over TLS). */
  via: string;
  /** The volume acted on, as it was called then (null for sign-ins, tokens, devices). */
  volumeName: string | null;
  tokenId: string | null;
  actorId: string | null;
  detail: Record<string, unknown>;
}

export function activityView(row: ActivityRow): ActivityView {
  return {
    id: row.id,
    at: row.at.toISOString(),
    action: row.action,
    via: row.via,
    volumeName: row.volumeName,
    tokenId: row.tokenId,
    actorId: row.actorId,
    detail: row.detail,
  };
}
