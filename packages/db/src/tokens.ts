/** API token rows. The secret itself never reaches this package: only its hash and visible prefix. */
import { and, desc, eq, isNull } from "drizzle-orm";
import type { Db } from "./client";
import { newId } from "./ids";
import { apiTokens, users, type ApiTokenRow, type TokenScope, type UserRow } from "./schema";

export interface NewApiToken {
  userId: string;
  name: string;
  prefix: string;
  secretHash: string;
  scope: TokenScope;
  expiresAt: Date | null;
}

export async function insertApiToken(db: Db, input: NewApiToken): Promise<ApiTokenRow> {
  const [row] = await db
    .insert(apiTokens)
    .values({ id: newId("token"), ...input })
    .returning();
  return row!;
}

export async function listApiTokens(db: Db, userId: string): Promise<ApiTokenRow[]> {
  return db.select().from(apiTokens).where(eq(apiTokens.userId, userId)).orderBy(desc(apiTokens.createdAt));
}

/** The token and its user by the visible prefix (authentication then compares the hash). */
export async function findApiTokenByPrefix(db: Db, prefix: string): Promise<{ token: ApiTokenRow; user: UserRow } | undefined> {
  const [row] = await db.select().from(apiTokens).innerJoin(users, eq(users.id, apiTokens.userId)).where(eq(apiTokens.prefix, prefix));
  return row ? { token: row.api_tokens, user: row.users } : undefined;
}

/** Revokes the user's token; undefined when the user has no such (unrevoked) token. */
export async function revokeApiTokenRow(db: Db, userId: string, tokenId: string): Promise<ApiTokenRow | undefined> {
  const [row] = await db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiTokens.id, tokenId), eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)))
    .returning();
  return row;
}

export async function touchApiToken(db: Db, tokenId: string, at: Date): Promise<void> {
  await db.update(apiTokens).set({ lastUsedAt: at }).where(eq(apiTokens.id, tokenId));
}
