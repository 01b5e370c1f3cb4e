/**
 * Who is calling, from a Request: `Authorization: Bearer <API token>` (tRPC, REST, CLI) or the next-auth
 * session cookie (the dashboard). A presented token that does not authenticate is refused outright,
 * never silently replaced by a cookie. Also decides the CSRF check for cookie requests.
 */
import { authenticateApiToken, clientAddress, isServiceError, type Actor, type RequestMeta } from "@stratus/control";
import { getToken } from "next-auth/jwt";
import { webEnv } from "./env";
import { getRegistered } from "./runtime";
import type { Context } from "./trpc";

export const SESSION_COOKIES = ["__Secure-authjs.session-token", "authjs.session-token"] as const;
export const CSRF_HEADER = "x-stratus-csrf";

export function bearerToken(req: Request): string | undefined {
  const header = req.headers.get("authorization");
  if (!header) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match ? match[1]!.trim() : "";
}

/** The user id in a valid session cookie, or undefined. */
export async function sessionUserId(req: Request, secret: string): Promise<string | undefined> {
  for (const cookieName of SESSION_COOKIES) {
    const token = await getToken({ req, secret, cookieName, salt: cookieName, secureCookie: cookieName.startsWith("__Secure-") }).catch(() => null);
    const userId = token?.sub ?? (token as { userId?: string } | null)?.userId;
    if (typeof userId === "string" && userId) return userId;
  }
  return undefined;
}

/**
 * Cookie-authenticated state changes need BOTH a same-origin Origin (or Referer) and the custom header
 * `x-stratus-csrf: 1`, which a cross-site form cannot send and a cross-site fetch cannot add without a
 * CORS preflight we never answer.
 */
export function passesCsrfCheck(req: Request): boolean {
  if (req.headers.get(CSRF_HEADER) !== "1") return false;
  const source = req.headers.get("origin") ?? req.headers.get("referer");
  if (!source) return false;
  let sourceHost: string;
  try {
    sourceHost = new URL(source).host;
  } catch {
    return false;
  }
  const host = req.headers.get("x-forwarded-host") ?? req.headers.get("host") ?? new URL(req.url).host;
  return sourceHost === host;
}

export function requestMetaOf(req: Request): RequestMeta {
  // From the socket's peer (or, behind a trusted proxy, its X-Forwarded-For), never from a client header.
  const ip = clientAddress(req.headers, webEnv().trustedProxies);
  return { ip, userAgent: req.headers.get("user-agent")?.slice(0, 200) ?? undefined };
}

export async function contextFromRequest(req: Request): Promise<Context> {
  const { runtime, authSecret } = await getRegistered();
  const requestMeta = requestMetaOf(req);
  const bearer = bearerToken(req);
  if (bearer !== undefined) {
    try {
      const actor = await authenticateApiToken(runtime, bearer);
      return { runtime, actor, tokenRefused: false, csrfOk: true, requestMeta };
    } catch (error) {
      if (!isServiceError(error)) throw error;
      return { runtime, actor: null, tokenRefused: true, csrfOk: true, requestMeta };
    }
  }
  const userId = await sessionUserId(req, authSecret);
  const actor: Actor | null = userId ? { userId, via: "session", scope: "write" } : null;
  return { runtime, actor, tokenRefused: false, csrfOk: passesCsrfCheck(req), requestMeta };
}
