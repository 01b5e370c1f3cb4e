/**
 * Request level: the sign-in page (and its /signin alias) hands the form only a path on this site, and
 * next-auth's own sign-in route (csrf token, then the credentials callback) answers every off-site
 * callbackUrl with a Location on this site, for a good sign-in and a refused one alike.
 */
import { signUp } from "@stratus/control";
import { openTestRuntime, type TestRuntime } from "@stratus/control/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as authRoute from "@/app/api/auth/[...nextauth]/route";
import SignInPage from "@/app/(auth)/sign-in/page";
import SignInAlias from "@/app/signin/page";
import { ORIGIN, registerRuntime } from "./testing";

const PASSWORD = "redirect-password-31";
const ATTEMPTS = ["/\\evil.com", "/\t/evil.com", "/\\t/evil.com", "//evil.com", "https://evil.com", "/\\/evil.com", "http://evil.com@stratus.test.evil.com/"];

describe("sign-in callbackUrl", () => {
  let t: TestRuntime;
  let unregister: () => void;

  beforeAll(async () => {
    t = await openTestRuntime("pglite");
    unregister = registerRuntime(t.runtime);
    await signUp({ runtime: t.runtime }, { email: "r@example.com", password: PASSWORD }, "open");
  });
  afterAll(async () => {
    unregister?.();
    await t?.dispose();
  });

  it("the sign-in page passes the form only same-site paths", async () => {
    const formTarget = async (callbackUrl: string) =>
      ((await SignInPage({ searchParams: Promise.resolve({ callbackUrl }) })) as { props: { callbackUrl: string } }).props.callbackUrl;
    for (const attempt of ATTEMPTS) expect([attempt, await formTarget(attempt)]).toEqual([attempt, "/volumes"]);
    expect(await formTarget("/volumes/db1?tab=keys")).toBe("/volumes/db1?tab=keys");
    // The alias redirects (Next throws its redirect) to /sign-in with the checked path only.
    for (const attempt of ATTEMPTS) {
      const thrown = (await SignInAlias({ searchParams: Promise.resolve({ callbackUrl: attempt }) }).catch((error: unknown) => error)) as { digest?: string };
      expect(thrown.digest).toContain(`/sign-in?callbackUrl=${encodeURIComponent("/volumes")}`);
    }
  });

  async function signIn(password: string, callbackUrl: string): Promise<{ ok: boolean; location: string }> {
    const host = new URL(ORIGIN).host;
    const csrfResponse = await authRoute.GET(new Request(`${ORIGIN}/api/auth/csrf`, { headers: { host } }) as never);
    const { csrfToken } = (await csrfResponse.json()) as { csrfToken: string };
    const cookie = csrfResponse.headers
      .getSetCookie()
      .map((c) => c.split(";")[0])
      .join("; ");
    const response = await authRoute.POST(
      new Request(`${ORIGIN}/api/auth/callback/credentials`, {
        method: "POST",
        headers: { host, cookie, "content-type": "application/x-www-form-urlencoded", origin: ORIGIN },
        body: new URLSearchParams({ email: "r@example.com", password, csrfToken, callbackUrl }),
      }) as never,
    );
    return { ok: response.headers.getSetCookie().some((c) => c.startsWith("authjs.session-token=")), location: response.headers.get("location") ?? "" };
  }

  it("stays on the site for every off-site attempt", async () => {
    for (const attempt of ATTEMPTS) {
      const good = await signIn(PASSWORD, attempt);
      expect(good.ok).toBe(true);
      expect([attempt, new URL(good.location).origin]).toEqual([attempt, ORIGIN]);
    }
    const refused = await signIn("wrong password", "https://evil.com/");
    expect(refused.ok).toBe(false);
    expect(new URL(refused.location).origin).toBe(ORIGIN);
    // A same-site path is kept.
    expect((await signIn(PASSWORD, "/volumes/db1")).location).toBe(`${ORIGIN}/volumes/db1`);
  });
});
