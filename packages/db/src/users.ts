import { eq } from "drizzle-orm";
import type { Db } from "./client";
import { newId } from "./ids";
import { users, type UserRow } from "./schema";

/**
 * The embedded default's single local user, who owns every volume made from the CLI. `.invalid` is a
 * reserved top-level domain, so this address can never collide with a real account's.
 */
export const LOCAL_ADMIN_EMAIL = "local-admin@stratus.invalid";

/** Returns the local user, creating it on first use. Safe to call at every start, even concurrently. */
export async function ensureLocalAdmin(db: Db): Promise<UserRow> {
  await db
    .insert(users)
    .values({ id: newId("user"), email: LOCAL_ADMIN_EMAIL, passwordHash: null, isAdmin: true })
    .onConflictDoNothing({ target: users.email });
  const [user] = await db.select().from(users).where(eq(users.email, LOCAL_ADMIN_EMAIL));
  if (!user) throw new Error("the local admin user vanished right after it was ensured"); // only if deleted concurrently
  return user;
}

export async function findUserById(db: Db, id: string): Promise<UserRow | undefined> {
  const [user] = await db.select().from(users).where(eq(users.id, id));
  return user;
}
