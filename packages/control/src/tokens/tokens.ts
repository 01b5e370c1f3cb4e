/**
 * API tokens: `stratus_<prefix>_<secret>` where prefix is 8 base58 characters (shown in lists, and how
 * a presented token finds its row) and secret is 32 random bytes in base64url. The whole string is shown
 * once, at creation; the database keeps only its SHA-256. `Authorization: Bearer <token>` authenticates
 * tRPC, REST and the CLI as the token's user, with the token's scope.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import {
  findApiTokenByPrefix,
  insertApiToken,
  listApiTokens as listApiTokenRows,
  revokeApiTokenRow,
  touchApiToken,
  type ApiTokenRow,
  type Db,
} from "@stratus/db";
import * as z from "zod";
import { recordActivity } from "../activity/activity";
import { requireWrite, type Actor, type Runtime, type Scope, type ServiceContext } from "../context";
import { ServiceError } from "../errors";

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const PREFIX_LENGTH = 8;
const TOKEN_PATTERN = new RegExp(`^stratus_([${BASE58}]{${PREFIX_LENGTH}})_([A-Za-z0-9_-]{43})$`);
/** last_used_at is written at most this often per token. */
const TOUCH_INTERVAL_MS = 60_000;

export const createApiTokenInput = z.object({
  name: z.string().trim().min(1, "give the token a name").max(64, "at most 64 characters"),
  scope: z.enum(["read", "write"]),
  /** Days until it expires; absent: never. */
  expiresInDays: z.number().int().min(1).max(3650).optional(),
});
export type CreateApiTokenInput = z.input<typeof createApiTokenInput>;

export interface ApiTokenView {
  id: string;
  name: string;
  /** The visible part: `stratus_<prefix>_…`. */
  prefix: string;
  scope: Scope;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  /** active | expired | revoked */
  status: "active" | "expired" | "revoked";
}

export interface CreatedApiToken {
  token: ApiTokenView;
  /** The secret, shown once. Never logged, never stored. */
  secret: string;
}

export const hashToken = (secret: string) => createHash("sha256").update(secret).digest("hex");

function randomPrefix(): string {
  let out = "";
  while (out.length < PREFIX_LENGTH) {
    for (const byte of randomBytes(16)) {
      if (byte < 232 && out.length < PREFIX_LENGTH) out += BASE58[byte % 58];
    }
  }
  return out;
}

export function tokenView(row: ApiTokenRow, now = new Date()): ApiTokenView {
  const status = row.revokedAt ? "revoked" : row.expiresAt && row.expiresAt <= now ? "expired" : "active";
  return {
    id: row.id,
    name: row.name,
    prefix: `stratus_${row.prefix}_`,
    scope: row.scope,
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt?.toISOString() ?? null,
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    revokedAt: row.revokedAt?.toISOString() ?? null,
    status,
  };
}

/** Makes a token row and its secret (no authorisation: the CLI token file uses this at start too). */
export async function issueApiToken(db: Db, userId: string, input: { name: string; scope: Scope; expiresAt: Date | null }): Promise<CreatedApiToken> {
  const prefix = randomPrefix();
  const secret = `stratus_${prefix}_${randomBytes(32).toString("base64url")}`;
  const row = await insertApiToken(db, { userId, name: input.name, prefix, secretHash: hashToken(secret), scope: input.scope, expiresAt: input.expiresAt });
  return { token: tokenView(row), secret };
}

export async function createApiToken(ctx: ServiceContext, input: CreateApiTokenInput): Promise<CreatedApiToken> {
  requireWrite(ctx);
  // A token cannot mint a token: a leaked token must not be able to outlive its own revocation.
  if (ctx.actor.via === "token") throw new ServiceError("FORBIDDEN", "API tokens are created from the dashboard, not with another token");
  const parsed = createApiTokenInput.parse(input);
  const expiresAt = parsed.expiresInDays ? new Date(Date.now() + parsed.expiresInDays * 86_400_000) : null;
  const created = await issueApiToken(ctx.runtime.database.db, ctx.actor.userId, { name: parsed.name, scope: parsed.scope, expiresAt });
  await recordActivity(ctx, {
    ownerId: ctx.actor.userId,
    action: "token.create",
    detail: { tokenId: created.token.id, name: parsed.name, scope: parsed.scope },
  });
  return created;
}

export async function listApiTokens(ctx: ServiceContext): Promise<ApiTokenView[]> {
  const now = new Date();
  return (await listApiTokenRows(ctx.runtime.database.db, ctx.actor.userId)).map((row) => tokenView(row, now));
}

export async function revokeApiToken(ctx: ServiceContext, input: { id: string }): Promise<ApiTokenView> {
  requireWrite(ctx);
  const row = await revokeApiTokenRow(ctx.runtime.database.db, ctx.actor.userId, input.id);
  // Another user's token, an unknown id and an already revoked one all look the same.
  if (!row) throw new ServiceError("NOT_FOUND", "no such active token");
  await recordActivity(ctx, { ownerId: ctx.actor.userId, action: "token.revoke", detail: { tokenId: row.id, name: row.name } });
  return tokenView(row);
}

/**
 * The actor a presented token stands for; UNAUTHORIZED for anything malformed, unknown, revoked or
 * expired (one message for all: the caller learns nothing about which).
 */
export async function authenticateApiToken(runtime: Runtime, secret: string): Promise<Actor> {
  const refused = new ServiceError("UNAUTHORIZED", "invalid, expired or revoked API token");
  const match = TOKEN_PATTERN.exec(secret.trim());
  if (!match) throw refused;
  const found = await findApiTokenByPrefix(runtime.database.db, match[1]!);
  if (!found) throw refused;
  const { token } = found;
  const presented = Buffer.from(hashToken(secret.trim()), "hex");
  const expected = Buffer.from(token.secretHash, "hex");
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) throw refused;
  const now = new Date();
  if (token.revokedAt || (token.expiresAt && token.expiresAt <= now)) throw refused;
  if (!token.lastUsedAt || now.getTime() - token.lastUsedAt.getTime() > TOUCH_INTERVAL_MS) {
    await touchApiToken(runtime.database.db, token.id, now);
  }
  return { userId: token.userId, via: "token", scope: token.scope, tokenId: token.id };
}

/** Whether a token string authenticates (the CLI token file is reused at start only if it does). */
export async function isValidApiToken(runtime: Pick<Runtime, "database">, secret: string): Promise<boolean> {
  try {
    await authenticateApiToken(runtime as Runtime, secret);
    return true;
  } catch {
    return false;
  }
}
