/**
 * Accounts with passwords (the control plane). Emails are stored lower-cased; the caller hashes the
 * password (this package never sees one in plain form).
 */
import { and, count, eq, isNotNull, ne } from "drizzle-orm";
import type { Db } from "./client";
import { DbError, sqlStateOf } from "./errors";
import { newId } from "./ids";
import { users, type UserRow } from "./schema";
import { LOCAL_ADMIN_EMAIL } from "./users";

export async function findUserByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  const [user] = await db.select().from(users).where(eq(users.email, email.toLowerCase()));
  return user;
}

/** Accounts that can sign in (the local admin has no password until claimed). */
export async function countAccounts(db: Db): Promise<number> {
  const [row] = await db.select({ n: count() }).from(users).where(isNotNull(users.passwordHash));
  return row?.n ?? 0;
}

/** A new account; a taken email -> EMAIL_TAKEN. */
export async function insertAccount(db: Db, input: { email: string; passwordHash: string; isAdmin: boolean }): Promise<UserRow> {
  try {
    const [row] = await db
      .insert(users)
      .values({ id: newId("user"), email: input.email.toLowerCase(), passwordHash: input.passwordHash, isAdmin: input.isAdmin })
      .returning();
    return row!;
  } catch (err) {
    if (sqlStateOf(err) === "23505") throw new DbError("EMAIL_TAKEN", "an account with this email already exists", { cause: err });
    throw err;
  }
}

/**
 * The embedded default's first sign-up: the local admin user (who owns what the CLI created) becomes
 * this account. Only while it has no password, so it happens once; returns undefined otherwise.
 */
export async function claimLocalAdmin(db: Db, input: { email: string; passwordHash: string }): Promise<UserRow | undefined> {
  try {
    const [row] = await db
      .update(users)
      .set({ email: input.email.toLowerCase(), passwordHash: input.passwordHash, isAdmin: true })
      .where(and(eq(users.email, LOCAL_ADMIN_EMAIL), eq(users.isAdmin, true)))
      .returning();
    return row;
  } catch (err) {
    if (sqlStateOf(err) === "23505") throw new DbError("EMAIL_TAKEN", "an account with this email already exists", { cause: err });
    throw err;
  }
}

/** True when some account other than `exceptId` exists with a password (first-account check). */
export async function otherAccountsExist(db: Db, exceptId: string): Promise<boolean> {
  const [row] = await db
    .select({ n: count() })
    .from(users)
    .where(and(isNotNull(users.passwordHash), ne(users.id, exceptId)));
  return (row?.n ?? 0) > 0;
}
