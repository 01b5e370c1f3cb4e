/**
 * Account creation on PGlite and PostgreSQL: 20 sign-ups at once on an empty database make exactly one
 * admin; invitations are single-use, expire, survive a failed sign-up, and a setup token makes only
 * the first admin.
 */
import { describe, expect, it } from "vitest";
import { countAccounts } from "./accounts";
import { isDbError } from "./errors";
import { createAccount, deleteExpiredSetupTokens, deleteUnusedInvitation, insertInvitation, listInvitations } from "./invitations";
import { executeRows } from "./client";
import { useTestDatabase } from "./testing/per-database";
import { DATABASE_KINDS } from "./testing/test-database";
import { sql } from "drizzle-orm";

const now = () => new Date();
const later = (ms: number) => new Date(Date.now() + ms);

describe.each(DATABASE_KINDS)("accounts and invitations on %s", (kind) => {
  const current = useTestDatabase(kind);

  it("20 simultaneous sign-ups on an empty database make exactly one admin", async () => {
    const db = current().db;
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, i) => createAccount(db, { email: `racer${i}@example.com`, passwordHash: "scrypt$x", claimLocalAdmin: false, now: now() })),
    );
    expect(created.filter(({ user }) => user.isAdmin)).toHaveLength(1);
    expect(await countAccounts(db)).toBe(20);
    const admins = await executeRows<{ n: number }>(db, sql`select count(*)::int as n from users where is_admin`);
    expect(admins[0]!.n).toBe(1);
  });

  it("spends an invitation once, keeps it when the sign-up fails, refuses expired ones and late setup tokens", async () => {
    const db = current().db;
    const [admin] = await executeRows<{ id: string }>(db, sql`select id from users where is_admin`);
    const invite = await insertInvitation(db, { tokenHash: "a".repeat(64), kind: "invite", createdBy: admin!.id, expiresAt: later(60_000) });
    // Email taken: the transaction rolls back and the invitation stays usable.
    await expect(
      createAccount(db, { email: "racer0@example.com", passwordHash: "h", claimLocalAdmin: false, invitationHash: invite.tokenHash, now: now() }),
    ).rejects.toSatisfy((error) => isDbError(error, "EMAIL_TAKEN"));
    const joined = await createAccount(db, {
      email: "invited@example.com",
      passwordHash: "h",
      claimLocalAdmin: false,
      invitationHash: invite.tokenHash,
      now: now(),
    });
    expect(joined.user.isAdmin).toBe(false);
    expect(joined.invitation).toMatchObject({ id: invite.id, usedAt: expect.any(Date) });
    const reuse = createAccount(db, { email: "second@example.com", passwordHash: "h", claimLocalAdmin: false, invitationHash: invite.tokenHash, now: now() });
    await expect(reuse).rejects.toSatisfy((error) => isDbError(error, "INVITATION_INVALID"));
    const [listed] = await listInvitations(db, admin!.id);
    expect(listed).toMatchObject({ id: invite.id, usedBy: joined.user.id });

    const expired = await insertInvitation(db, { tokenHash: "b".repeat(64), kind: "invite", createdBy: admin!.id, expiresAt: later(-1) });
    await expect(
      createAccount(db, { email: "late@example.com", passwordHash: "h", claimLocalAdmin: false, invitationHash: expired.tokenHash, now: now() }),
    ).rejects.toSatisfy((error) => isDbError(error, "INVITATION_INVALID"));
    await expect(
      createAccount(db, { email: "unknown@example.com", passwordHash: "h", claimLocalAdmin: false, invitationHash: "c".repeat(64), now: now() }),
    ).rejects.toSatisfy((error) => isDbError(error, "INVITATION_INVALID"));
    // Accounts exist: a setup token no longer makes anyone.
    const setup = await insertInvitation(db, { tokenHash: "d".repeat(64), kind: "setup", createdBy: null, expiresAt: later(60_000) });
    await expect(
      createAccount(db, { email: "setup@example.com", passwordHash: "h", claimLocalAdmin: false, invitationHash: setup.tokenHash, now: now() }),
    ).rejects.toSatisfy((error) => isDbError(error, "INVITATION_INVALID"));
    expect(await deleteUnusedInvitation(db, admin!.id, invite.id)).toBeUndefined(); // used: kept as a record
    expect(await deleteUnusedInvitation(db, admin!.id, expired.id)).toMatchObject({ id: expired.id });
    const stale = await insertInvitation(db, { tokenHash: "e".repeat(64), kind: "setup", createdBy: null, expiresAt: later(-1) });
    await deleteExpiredSetupTokens(db, now());
    const left = await executeRows<{ id: string }>(db, sql`select id from invitations where kind = 'setup'`);
    expect(left.map((row) => row.id)).toEqual([setup.id]);
    expect(stale.id).not.toBe(setup.id);
  });
});
