/**
 * Invitations, for a dashboard where open sign-up is off: an admin makes a single-use link
 * (`/sign-up#invitation=<token>`: the token rides in the fragment, which browsers never send to a
 * server) that expires; the token is shown once and only its SHA-256 is kept. The setup token is the
 * same thing for the first admin: made at start while no account exists and written to the log, the
 * one log line that holds a secret.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  countAccounts,
  deleteExpiredSetupTokens,
  deleteUnusedInvitation,
  findUserById,
  insertInvitation,
  listInvitations as listInvitationRows,
} from "@stratus/db";
import * as z from "zod";
import { requireWrite, type Runtime, type ServiceContext } from "../context";
import { ServiceError } from "../errors";

const TOKEN_PREFIX = "stratus_inv_";
const SETUP_TOKEN_HOURS = 24;

export const createInvitationInput = z.object({
  /** Hours until it expires (default 7 days, at most 30 days). */
  expiresInHours: z
    .number()
    .int()
    .min(1)
    .max(30 * 24)
    .default(7 * 24),
});

export interface InvitationView {
  id: string;
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
  state: "open" | "used" | "expired";
}

export interface CreatedInvitation {
  invitation: InvitationView;
  /** Shown once. */
  token: string;
  /** Path of the sign-up page with the token in its fragment. */
  path: string;
}

export function hashInvitationToken(token: string): string {
  return createHash("sha256").update(token.trim()).digest("hex");
}

function newToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(24).toString("base64url")}`;
}

export const invitationPath = (token: string) => `/sign-up#invitation=${token}`;

async function requireAdmin(ctx: ServiceContext): Promise<void> {
  const user = await findUserById(ctx.runtime.database.db, ctx.actor.userId);
  if (!user?.isAdmin) throw new ServiceError("FORBIDDEN", "only an admin can manage invitations");
}

function view(row: { id: string; createdAt: Date; expiresAt: Date; usedAt: Date | null }, now: Date): InvitationView {
  const state = row.usedAt ? "used" : row.expiresAt <= now ? "expired" : "open";
  return { id: row.id, createdAt: row.createdAt.toISOString(), expiresAt: row.expiresAt.toISOString(), usedAt: row.usedAt?.toISOString() ?? null, state };
}

export async function createInvitation(ctx: ServiceContext, input: z.input<typeof createInvitationInput> = {}): Promise<CreatedInvitation> {
  requireWrite(ctx);
  await requireAdmin(ctx);
  const parsed = createInvitationInput.safeParse(input ?? {});
  if (!parsed.success) throw new ServiceError("BAD_REQUEST", `expiresInHours: ${parsed.error.issues[0]!.message}`, { field: "expiresInHours" });
  const { expiresInHours } = parsed.data;
  const token = newToken();
  const now = new Date();
  const row = await insertInvitation(ctx.runtime.database.db, {
    tokenHash: hashInvitationToken(token),
    kind: "invite",
    createdBy: ctx.actor.userId,
    expiresAt: new Date(now.getTime() + expiresInHours * 3_600_000),
  });
  ctx.runtime.logger.info({ userId: ctx.actor.userId, invitationId: row.id }, "invitation created");
  return { invitation: view(row, now), token, path: invitationPath(token) };
}

export async function listInvitations(ctx: ServiceContext): Promise<InvitationView[]> {
  await requireAdmin(ctx);
  const now = new Date();
  return (await listInvitationRows(ctx.runtime.database.db, ctx.actor.userId)).map((row) => view(row, now));
}

export async function revokeInvitation(ctx: ServiceContext, input: { id: string }): Promise<void> {
  requireWrite(ctx);
  await requireAdmin(ctx);
  const row = await deleteUnusedInvitation(ctx.runtime.database.db, ctx.actor.userId, input.id);
  if (!row) throw new ServiceError("NOT_FOUND", "no unused invitation with this id");
}

/**
 * A new setup token while no account exists (undefined once one does), valid 24 hours. Called at each
 * start of a dashboard where open sign-up is off; expired ones are dropped.
 */
export async function issueSetupToken(runtime: Runtime): Promise<{ token: string; path: string; expiresAt: Date } | undefined> {
  const db = runtime.database.db;
  if ((await countAccounts(db)) > 0) return undefined;
  const now = new Date();
  await deleteExpiredSetupTokens(db, now);
  const token = newToken();
  const expiresAt = new Date(now.getTime() + SETUP_TOKEN_HOURS * 3_600_000);
  await insertInvitation(db, { tokenHash: hashInvitationToken(token), kind: "setup", createdBy: null, expiresAt });
  return { token, path: invitationPath(token), expiresAt };
}
