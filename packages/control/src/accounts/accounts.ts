/**
 * Accounts: sign up, check a password at sign-in (rate-limited per email and per client address), read
 * one's own account. The first account becomes the admin, atomically (see @stratus/db createAccount); in
 * the embedded default it claims the local admin user the CLI acts as, so volumes created from the CLI
 * before sign-up are the new account's. Where open sign-up is off, a sign-up needs an invitation (or,
 * for the first admin, the setup token from the log); see invitations.ts.
 */
import { createAccount, DbError, findUserByEmail, findUserById } from "@stratus/db";
import * as z from "zod";
import type { AnonymousContext, ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { dummyPasswordHash, hashPassword, verifyPassword } from "../keys/passwords";
import { LOGIN_FAILURES_PER_ADDRESS, LOGIN_LIMIT, refundRateLimit, resetRateLimit, SIGNUP_LIMIT, takeRateLimit } from "../rate-limit";
import { hashInvitationToken } from "./invitations";

export const emailSchema = z.string().trim().toLowerCase().pipe(z.email("enter a valid email address").max(254));
export const passwordSchema = z.string().min(10, "at least 10 characters").max(256, "at most 256 characters");

export const signUpInput = z.object({
  email: emailSchema,
  password: passwordSchema,
  /** An admin's invitation or the setup token; needed where open sign-up is off. */
  invitation: z.string().trim().max(200).optional(),
});
export const credentialsInput = z.object({ email: emailSchema, password: z.string().min(1).max(256) });

/** Who may create an account: anyone (`open`), or only holders of an invitation or the setup token. */
export type SignUpPolicy = "open" | "invite";

export interface AccountView {
  id: string;
  email: string;
  isAdmin: boolean;
  createdAt: string;
}

export async function signUp(ctx: AnonymousContext, input: z.input<typeof signUpInput>, policy: SignUpPolicy): Promise<AccountView> {
  const parsed = signUpInput.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ServiceError("BAD_REQUEST", issue.message, { field: String(issue.path[0] ?? "") || undefined });
  }
  const { email, password, invitation } = parsed.data;
  const { redis, config } = ctx.runtime;
  // Every attempt counts (before the costly hash): this limits account creation and token guessing.
  if (ctx.requestMeta?.ip) await takeRateLimit(redis, config.prefix, SIGNUP_LIMIT, [`ip:${ctx.requestMeta.ip}`]);
  if (policy === "invite" && !invitation) {
    throw new ServiceError("FORBIDDEN", "sign-up here is by invitation: ask an admin for an invitation link", { field: "invitation" });
  }
  const passwordHash = await hashPassword(password, config.kdf);
  try {
    const { user } = await createAccount(ctx.runtime.database.db, {
      email,
      passwordHash,
      claimLocalAdmin: config.embedded,
      invitationHash: invitation ? hashInvitationToken(invitation) : undefined,
      now: new Date(),
    });
    ctx.runtime.logger.info({ userId: user.id, admin: user.isAdmin, invited: invitation !== undefined }, "account created");
    return { id: user.id, email: user.email, isAdmin: user.isAdmin, createdAt: user.createdAt.toISOString() };
  } catch (error) {
    if (error instanceof DbError && error.code === "EMAIL_TAKEN") {
      throw new ServiceError("CONFLICT", "an account with this email already exists", { field: "email", cause: error });
    }
    if (error instanceof DbError && error.code === "INVITATION_INVALID") {
      throw new ServiceError("FORBIDDEN", "this invitation is unknown, already used or expired", { field: "invitation", cause: error });
    }
    throw error;
  }
}

/**
 * The account for an email and password, or UNAUTHORIZED. Every attempt counts against the email's limit
 * (10 per 15 minutes; a success clears it); against the client address only failures count (10 per 15
 * minutes: each attempt is taken first and a success gives it back).
 */
export async function verifyCredentials(ctx: AnonymousContext, input: { email: unknown; password: unknown }): Promise<AccountView> {
  const parsed = credentialsInput.safeParse(input);
  if (!parsed.success) throw new ServiceError("UNAUTHORIZED", "wrong email or password");
  const { email, password } = parsed.data;
  const { redis, config } = ctx.runtime;
  const ip = ctx.requestMeta?.ip;
  await takeRateLimit(redis, config.prefix, LOGIN_LIMIT, [`email:${email}`]);
  if (ip) await takeRateLimit(redis, config.prefix, LOGIN_FAILURES_PER_ADDRESS, [`ip:${ip}`]);
  const user = await findUserByEmail(ctx.runtime.database.db, email);
  // Verify against a dummy hash for unknown emails, so timing does not reveal which emails exist.
  const ok = await verifyPassword(password, user?.passwordHash ?? dummyPasswordHash(config.kdf));
  if (!user || !user.passwordHash || !ok) throw new ServiceError("UNAUTHORIZED", "wrong email or password");
  await resetRateLimit(redis, config.prefix, LOGIN_LIMIT, `email:${email}`);
  if (ip) await refundRateLimit(redis, config.prefix, LOGIN_FAILURES_PER_ADDRESS, `ip:${ip}`);
  return { id: user.id, email: user.email, isAdmin: user.isAdmin, createdAt: user.createdAt.toISOString() };
}

export async function getAccount(ctx: ServiceContext): Promise<AccountView> {
  const user = await findUserById(ctx.runtime.database.db, ctx.actor.userId);
  if (!user) throw new ServiceError("UNAUTHORIZED", "this account no longer exists");
  return { id: user.id, email: user.email, isAdmin: user.isAdmin, createdAt: user.createdAt.toISOString() };
}
