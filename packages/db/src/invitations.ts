/**
 * Account creation and sign-up invitations. The first account becomes the admin: whether one exists is
 * read and the account written under one transaction-scoped advisory lock, so sign-ups at the same
 * moment (on any number of web processes) make exactly one admin. An invitation is spent in the same
 * transaction, so a failed sign-up (email taken) leaves it usable and two sign-ups cannot share one.
 */
import { and, desc, eq, gt, isNull, lte } from "drizzle-orm";
import { sql } from "drizzle-orm";
import { claimLocalAdmin, countAccounts, insertAccount } from "./accounts";
import type { Db } from "./client";
import { DbError } from "./errors";
import { newId } from "./ids";
import { invitations, type InvitationKind, type InvitationRow, type UserRow } from "./schema";

/** pg_advisory_xact_lock key for account creation ("stratus accounts" as a number). */
const ACCOUNTS_LOCK = 0x5374_4163;

export interface NewAccount {
  email: string;
  passwordHash: string;
  /** The embedded default: the first account takes over the local admin (CLI) user. */
  claimLocalAdmin: boolean;
  /** hex SHA-256 of the invitation or setup token presented, if any; spent on success. */
  invitationHash?: string;
  now: Date;
}

/** Creates the account; EMAIL_TAKEN, or INVITATION_INVALID for a token that cannot be used. */
export async function createAccount(db: Db, input: NewAccount): Promise<{ user: UserRow; invitation: InvitationRow | undefined }> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${ACCOUNTS_LOCK})`);
    const first = (await countAccounts(tx)) === 0;
    let invitation: InvitationRow | undefined;
    if (input.invitationHash !== undefined) {
      [invitation] = await tx
        .update(invitations)
        .set({ usedAt: input.now })
        .where(and(eq(invitations.tokenHash, input.invitationHash), isNull(invitations.usedAt), gt(invitations.expiresAt, input.now)))
        .returning();
      // A setup token makes the first admin and nothing else.
      if (!invitation || (invitation.kind === "setup" && !first)) {
        throw new DbError("INVITATION_INVALID", "this invitation is unknown, used or expired");
      }
    }
    const claimed = first && input.claimLocalAdmin ? await claimLocalAdmin(tx, input) : undefined;
    const user = claimed ?? (await insertAccount(tx, { email: input.email, passwordHash: input.passwordHash, isAdmin: first }));
    if (invitation) await tx.update(invitations).set({ usedBy: user.id }).where(eq(invitations.id, invitation.id));
    return { user, invitation };
  });
}

export async function insertInvitation(
  db: Db,
  input: { tokenHash: string; kind: InvitationKind; createdBy: string | null; expiresAt: Date },
): Promise<InvitationRow> {
  const [row] = await db
    .insert(invitations)
    .values({ id: newId("invitation"), ...input })
    .returning();
  return row!;
}

/** An admin's invitations, newest first. */
export async function listInvitations(db: Db, createdBy: string): Promise<InvitationRow[]> {
  return db.select().from(invitations).where(eq(invitations.createdBy, createdBy)).orderBy(desc(invitations.createdAt));
}

/** Withdraws an unused invitation of this admin; undefined when there is none. */
export async function deleteUnusedInvitation(db: Db, createdBy: string, id: string): Promise<InvitationRow | undefined> {
  const [row] = await db
    .delete(invitations)
    .where(and(eq(invitations.id, id), eq(invitations.createdBy, createdBy), isNull(invitations.usedAt)))
    .returning();
  return row;
}

/** Drops expired, unused setup tokens (a new one is logged at each start while no account exists). */
export async function deleteExpiredSetupTokens(db: Db, now: Date): Promise<void> {
  await db.delete(invitations).where(and(eq(invitations.kind, "setup"), isNull(invitations.usedAt), lte(invitations.expiresAt, now)));
}
