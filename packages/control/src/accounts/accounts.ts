/**
 * Accounts: sign up, check a password at sign-in (rate-limited per email and per IP), read one's own
 * account. The first account becomes the admin; in the embedded default it claims the local admin user
 * the CLI acts as, so volumes created from the CLI before sign-up are the new account's.
 */
import { claimLocalAdmin, countAccounts, DbError, findUserByEmail, findUserById, insertAccount } from "@stratus/db";
import { z } from "zod";
import type { AnonymousContext, ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { DUMMY_PASSWORD_HASH, hashPassword, verifyPassword } from "../keys/passwords";
import { LOGIN_LIMIT, resetRateLimit, takeRateLimit } from "../rate-limit";

export const emailSchema = z.string().trim().toLowerCase().pipe(z.email("enter a valid email address").max(254));
export const passwordSchema = z.string().min(10, "at least 10 characters").max(256, "at most 256 characters");

export const signUpInput = z.object({ email: emailSchema, password: passwordSchema });
export const credentialsInput = z.object({ email: emailSchema, password: z.string().min(1).max(256) });

export interface AccountView {
  id: string;
  email: string;
  isAdmin: boolean;
  createdAt: string;
}

export async function signUp(ctx: AnonymousContext, input: z.input<typeof signUpInput>): Promise<AccountView> {
  const parsed = signUpInput.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ServiceError("BAD_REQUEST", issue.message, { field: String(issue.path[0] ?? "") || undefined });
  }
  const { email, password } = parsed.data;
  const db = ctx.runtime.database.db;
  const passwordHash = await hashPassword(password, ctx.runtime.config.kdf);
  try {
    const first = (await countAccounts(db)) === 0;
    const claimed = first && ctx.runtime.config.embedded ? await claimLocalAdmin(db, { email, passwordHash }) : undefined;
    const user = claimed ?? (await insertAccount(db, { email, passwordHash, isAdmin: first }));
    ctx.runtime.logger.info({ userId: user.id, admin: user.isAdmin }, "account created");
    return { id: user.id, email: user.email, isAdmin: user.isAdmin, createdAt: user.createdAt.toISOString() };
  } catch (error) {
    if (error instanceof DbError && error.code === "EMAIL_TAKEN") {
      throw new ServiceError("CONFLICT", "an account with this email already exists", { field: "email", cause: error });
    }
    throw error;
  }
}

/**
 * The account for an email and password, or UNAUTHORIZED. Every attempt counts against the email's and
 * the IP's limit (10 per 15 minutes); a success clears the email's count.
 */
export async function verifyCredentials(ctx: AnonymousContext, input: { email: unknown; password: unknown }): Promise<AccountView> {
  const parsed = credentialsInput.safeParse(input);
  if (!parsed.success) throw new ServiceError("UNAUTHORIZED", "wrong email or password");
  const { email, password } = parsed.data;
  const { redis, config } = ctx.runtime;
  await takeRateLimit(redis, config.prefix, LOGIN_LIMIT, [`email:${email}`, ...(ctx.requestMeta?.ip ? [`ip:${ctx.requestMeta.ip}`] : [])]);
  const user = await findUserByEmail(ctx.runtime.database.db, email);
  // Verify against a dummy hash for unknown emails, so timing does not reveal which emails exist.
  const ok = await verifyPassword(password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
  if (!user || !user.passwordHash || !ok) throw new ServiceError("UNAUTHORIZED", "wrong email or password");
  await resetRateLimit(redis, config.prefix, LOGIN_LIMIT, `email:${email}`);
  return { id: user.id, email: user.email, isAdmin: user.isAdmin, createdAt: user.createdAt.toISOString() };
}

export async function getAccount(ctx: ServiceContext): Promise<AccountView> {
  const user = await findUserById(ctx.runtime.database.db, ctx.actor.userId);
  if (!user) throw new ServiceError("UNAUTHORIZED", "this account no longer exists");
  return { id: user.id, email: user.email, isAdmin: user.isAdmin, createdAt: user.createdAt.toISOString() };
}
