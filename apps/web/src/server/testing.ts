/**
 * Test helpers for the web server side: register a test runtime where the route handlers look for it,
 * and build real Requests as each kind of caller (session cookie, bearer token, anonymous).
 */
import { RUNTIME_SYMBOL, signUp, type Runtime } from "@stratus/control";
import { openTestRuntime, type TestRuntime } from "@stratus/control/testing";
import { afterAll, beforeAll } from "vitest";
import { encode } from "next-auth/jwt";

export const TEST_AUTH_SECRET = "test-auth-secret-0123456789abcdef0123456789";
export const ORIGIN = "http://stratus.test";

export function registerRuntime(runtime: Runtime): () => void {
  (globalThis as Record<symbol, unknown>)[RUNTIME_SYMBOL] = { runtime, authSecret: TEST_AUTH_SECRET };
  return () => delete (globalThis as Record<symbol, unknown>)[RUNTIME_SYMBOL];
}

/** A next-auth session cookie for this user, made the way next-auth makes them. */
export async function sessionCookie(userId: string): Promise<string> {
  const value = await encode({ token: { sub: userId }, secret: TEST_AUTH_SECRET, salt: "authjs.session-token", maxAge: 3600 });
  return `authjs.session-token=${value}`;
}

export type Caller = { kind: "anonymous" } | { kind: "session"; cookie: string; csrf?: boolean; origin?: string } | { kind: "token"; secret: string };

export function makeRequest(caller: Caller, method: string, pathname: string, body?: unknown): Request {
  const headers = new Headers({ host: new URL(ORIGIN).host });
  if (caller.kind === "session") {
    headers.set("cookie", caller.cookie);
    if (caller.csrf !== false) headers.set("x-stratus-csrf", "1");
    headers.set("origin", caller.origin ?? ORIGIN);
  }
  if (caller.kind === "token") headers.set("authorization", `Bearer ${caller.secret}`);
  if (body !== undefined) headers.set("content-type", "application/json");
  return new Request(`${ORIGIN}${pathname}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/**
 * For a describe block: a PGlite test runtime registered for the route handlers, and one signed-up user
 * calling with a session cookie. Read the getter inside tests (it is filled in beforeAll).
 */
export function useSignedInUser(email: string): () => { t: TestRuntime; caller: Caller; userId: string } {
  let state: { t: TestRuntime; caller: Caller; userId: string } | undefined;
  let unregister: (() => void) | undefined;
  beforeAll(async () => {
    const t = await openTestRuntime("pglite");
    unregister = registerRuntime(t.runtime);
    const user = await signUp({ runtime: t.runtime }, { email, password: "a-test-password-123" }, "open");
    state = { t, caller: { kind: "session", cookie: await sessionCookie(user.id) }, userId: user.id };
  });
  afterAll(async () => {
    unregister?.();
    await state?.t.dispose();
  });
  return () => state!;
}
