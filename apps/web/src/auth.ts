/**
 * next-auth v5: email + password (Credentials provider) with JWT sessions in an httpOnly cookie, secure
 * when the public URL is https. Passwords are checked by the verifyCredentials verb (scrypt, rate-limited
 * per email and per IP in Redis). The secret is AUTH_SECRET or the one generated into the data dir.
 */
import NextAuth, { CredentialsSignin } from "next-auth";
import Credentials from "next-auth/providers/credentials";
import { isServiceError, recordSignIn, recordSignOut, verifyCredentials } from "@stratus/control";
import { safeRedirectUrl } from "@/lib/safe-callback";
import { requestMetaOf } from "@/server/context";
import { webEnv } from "@/server/env";
import { getRegistered } from "@/server/runtime";

class RateLimited extends CredentialsSignin {
  constructor(minutes: number) {
    super();
    // The sign-in page reads `code` and says "try again in N minutes".
    this.code = `rate_limited_${minutes}m`;
  }
}

export const { handlers, auth, signIn, signOut } = NextAuth(async () => {
  const { runtime, authSecret } = await getRegistered();
  const publicUrl = webEnv().publicUrl;
  return {
    secret: authSecret,
    trustHost: true,
    useSecureCookies: publicUrl ? publicUrl.startsWith("https://") : undefined,
    session: { strategy: "jwt", maxAge: 7 * 24 * 3600 },
    pages: { signIn: "/signin" },
    logger: {
      // next-auth's own errors can carry the submitted form; log only their names.
      error: (error: Error) => runtime.logger.warn({ err: { name: error.name, message: error.name } }, "auth error"),
      warn: () => undefined,
      debug: () => undefined,
    },
    providers: [
      Credentials({
        credentials: { email: { label: "Email", type: "email" }, password: { label: "Password", type: "password" } },
        authorize: async (credentials, request) => {
          try {
            const ctx = { runtime, requestMeta: requestMetaOf(request) };
            const account = await verifyCredentials(ctx, { email: credentials?.email, password: credentials?.password });
            await recordSignIn(ctx, account.id);
            return { id: account.id, email: account.email };
          } catch (error) {
            if (isServiceError(error) && error.code === "TOO_MANY_REQUESTS") throw new RateLimited(Math.ceil((error.retryAfterSeconds ?? 900) / 60));
            if (isServiceError(error)) return null;
            throw error;
          }
        },
      }),
    ],
    events: {
      // The account's activity view; a failure to record must not break signing out.
      signOut: async (message) => {
        const userId = "token" in message ? message.token?.sub : undefined;
        if (userId) await recordSignOut(runtime, userId).catch((error: unknown) => runtime.logger.warn({ err: error }, "could not record a sign-out"));
      },
    },
    callbacks: {
      // Only this site: next-auth's own check lets `/\evil.com` through as a path.
      redirect: ({ url, baseUrl }) => safeRedirectUrl(url, baseUrl),
      jwt: ({ token, user }) => {
        if (user?.id) token.sub = user.id;
        return token;
      },
      session: ({ session, token }) => {
        if (session.user && token.sub) session.user.id = token.sub;
        return session;
      },
    },
  };
});
