/**
 * Security acceptance on the server side: CSRF refusal for cookie requests through the real /api/trpc
 * and REST handlers, login rate limits in real Redis (through next-auth's own credentials callback), and
 * no secret (password, passphrase, token, data key, master key) in any log line, URL, Redis value or
 * database column.
 */
import { createVolume, issueApiToken, peerHeaderName, signUp, verifyCredentials, type ServiceContext } from "@stratus/control";
import { openTestRuntime, type TestRuntime } from "@stratus/control/testing";
import { executeRows, findVolumeByName } from "@stratus/db";
import { unlockDataKey } from "@stratus/storage";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as trpcRoute from "@/app/api/trpc/[trpc]/route";
import * as authRoute from "@/app/api/auth/[...nextauth]/route";
import * as volumesRoute from "@/app/api/v1/volumes/route";
import * as passphraseRoute from "@/app/api/v1/volumes/[name]/passphrase/route";
import * as unlockRoute from "@/app/api/v1/volumes/[name]/unlock/route";
import { makeRequest, ORIGIN, registerRuntime, sessionCookie, type Caller } from "./testing";

const PASSWORD = "correct-horse-password-77";
const PASS1 = "first volume passphrase 93";
const PASS2 = "second volume passphrase 58";

describe("security", () => {
  let t: TestRuntime;
  let unregister: () => void;
  let userId: string;
  const urls: string[] = [];

  beforeAll(async () => {
    t = await openTestRuntime("postgres");
    unregister = registerRuntime(t.runtime);
    userId = (await signUp({ runtime: t.runtime }, { email: "owner@example.com", password: PASSWORD }, "open")).id;
  });
  afterAll(async () => {
    unregister?.();
    await t?.dispose();
  });

  function trpcCreate(caller: Caller, name: string, headers: Record<string, string> = {}): Promise<Response> {
    const req = makeRequest(caller, "POST", "/api/trpc/volume.create", { json: { name, size: "1M" } });
    for (const [key, value] of Object.entries(headers)) req.headers.set(key, value);
    urls.push(req.url);
    return trpcRoute.POST(req);
  }

  it("refuses cookie mutations without a same-origin Origin AND x-stratus-csrf; bearer requests need neither", async () => {
    const cookie = await sessionCookie(userId);
    expect((await trpcCreate({ kind: "session", cookie, csrf: false }, "c1")).status).toBe(403);
    expect((await trpcCreate({ kind: "session", cookie, origin: "http://evil.test" }, "c2")).status).toBe(403);
    const noOrigin = makeRequest({ kind: "session", cookie }, "POST", "/api/trpc/volume.create", { json: { name: "c3", size: "1M" } });
    noOrigin.headers.delete("origin");
    expect((await trpcRoute.POST(noOrigin)).status).toBe(403);
    // Same origin given only as Referer still counts; a cross-site Referer does not.
    const referer = makeRequest({ kind: "session", cookie, csrf: true }, "POST", "/api/trpc/volume.create", { json: { name: "c4", size: "1M" } });
    referer.headers.delete("origin");
    referer.headers.set("referer", "http://evil.test/page");
    expect((await trpcRoute.POST(referer)).status).toBe(403);
    const restCrossSite = makeRequest({ kind: "session", cookie, origin: "http://evil.test" }, "POST", "/api/v1/volumes", { name: "c5", size: "1M" });
    expect((await volumesRoute.POST(restCrossSite)).status).toBe(403);
    const listed = await executeRows(t.runtime.database.db, sql`select name from volumes`);
    expect(listed).toEqual([]);

    expect((await trpcCreate({ kind: "session", cookie }, "ok-cookie")).status).toBe(200);
    const token = await issueApiToken(t.runtime.database.db, userId, { name: "script", scope: "write", expiresAt: null });
    expect((await trpcCreate({ kind: "token", secret: token.secret }, "ok-token")).status).toBe(200);
  });

  /** Signs in through next-auth's own route: csrf token + cookie, then the credentials callback. */
  async function signIn(email: string, password: string, ip: string): Promise<{ ok: boolean; location: string }> {
    const csrfResponse = await authRoute.GET(
      new Request(`${ORIGIN}/api/auth/csrf`, { headers: { host: new URL(ORIGIN).host, [peerHeaderName()]: ip } }) as never,
    );
    const { csrfToken } = (await csrfResponse.json()) as { csrfToken: string };
    const cookie = csrfResponse.headers
      .getSetCookie()
      .map((c) => c.split(";")[0])
      .join("; ");
    const form = new URLSearchParams({ email, password, csrfToken, callbackUrl: `${ORIGIN}/volumes` });
    const response = await authRoute.POST(
      new Request(`${ORIGIN}/api/auth/callback/credentials`, {
        method: "POST",
        headers: { host: new URL(ORIGIN).host, cookie, "content-type": "application/x-www-form-urlencoded", origin: ORIGIN, [peerHeaderName()]: ip },
        body: form,
      }) as never,
    );
    const location = response.headers.get("location") ?? "";
    const ok = response.headers.getSetCookie().some((c) => c.startsWith("authjs.session-token="));
    return { ok, location };
  }

  it("signs in through next-auth, and rate-limits attempts per email and per IP with a clear 'try again in'", async () => {
    expect((await signIn("owner@example.com", PASSWORD, "10.0.0.1")).ok).toBe(true);
    for (let i = 0; i < 10; i++) {
      const attempt = await signIn("owner@example.com", `wrong-${i}`, `10.0.1.${i}`);
      expect(attempt.ok).toBe(false);
      expect(attempt.location).toContain("error=CredentialsSignin");
    }
    // The 11th attempt for this email is refused even with the right password.
    const limited = await signIn("owner@example.com", PASSWORD, "10.0.2.1");
    expect(limited.ok).toBe(false);
    expect(limited.location).toMatch(/code=rate_limited_\d+m/);
    await expect(verifyCredentials({ runtime: t.runtime }, { email: "owner@example.com", password: PASSWORD })).rejects.toThrow(/try again in \d+ minutes?/);

    // Per IP: many emails from one address.
    await signUp({ runtime: t.runtime }, { email: "other@example.com", password: PASSWORD }, "open");
    for (let i = 0; i < 10; i++) await signIn(`nobody${i}@example.com`, "x", "10.9.9.9");
    expect((await signIn("other@example.com", PASSWORD, "10.9.9.9")).location).toMatch(/rate_limited/);
    expect((await signIn("other@example.com", PASSWORD, "10.9.9.10")).ok).toBe(true);
  });

  it("keeps every secret out of logs, URLs, Redis and the database", async () => {
    const ctx: ServiceContext = { runtime: t.runtime, actor: { userId, via: "session", scope: "write" } };
    await createVolume(ctx, { name: "secret-vol", size: "1M", chunkSize: "64K", passphrase: PASS1, autoUnlock: false });
    const token = await issueApiToken(t.runtime.database.db, userId, { name: "cli", scope: "write", expiresAt: null });
    const bearer: Caller = { kind: "token", secret: token.secret };
    const call = async (route: { POST: (req: Request, ctx: never) => Promise<Response> }, path: string, body: unknown) => {
      const req = makeRequest(bearer, "POST", path, body);
      urls.push(req.url);
      return route.POST(req, { params: Promise.resolve({ name: "secret-vol" }) } as never);
    };
    expect((await call(unlockRoute, "/api/v1/volumes/secret-vol/unlock", { passphrase: "a wrong passphrase" })).status).toBe(403);
    expect((await call(unlockRoute, "/api/v1/volumes/secret-vol/unlock", { passphrase: PASS1 })).status).toBe(200);
    expect((await call(passphraseRoute, "/api/v1/volumes/secret-vol/passphrase", { oldPassphrase: PASS1, newPassphrase: PASS2 })).status).toBe(200);

    const row = await findVolumeByName(t.runtime.database.db, "secret-vol", userId);
    const dataKey = await unlockDataKey({ volumeId: row!.id, slots: row!.keySlots, passphrase: PASS2 });
    const master = t.runtime.masterKey.key;
    const secrets = {
      password: PASSWORD,
      passphrase1: PASS1,
      passphrase2: PASS2,
      token: token.secret,
      tokenSecretPart: token.secret.split("_").slice(2).join("_"),
      dataKeyHex: dataKey.toString("hex"),
      dataKeyBase64: dataKey.toString("base64"),
      masterKeyHex: master.toString("hex"),
      masterKeyBase64: master.toString("base64"),
    };

    const tables = await executeRows<{ table_name: string }>(
      t.runtime.database.db,
      sql`select table_name from information_schema.tables where table_schema = 'public'`,
    );
    const dump: string[] = [];
    for (const { table_name } of tables) dump.push(JSON.stringify(await executeRows(t.runtime.database.db, sql`select * from ${sql.identifier(table_name)}`)));
    expect(dump.join("\n")).toContain("secret-vol");
    const redis = (await t.dumpRedis()).join("\n");
    expect(redis).toContain(":unlock:"); // the grant is there, sealed
    expect(t.logs.length).toBeGreaterThan(0);
    for (const [what, secret] of Object.entries(secrets)) {
      expect(t.logs.join("\n").includes(secret), `${what} in logs`).toBe(false);
      expect(dump.join("\n").includes(secret), `${what} in the database`).toBe(false);
      expect(redis.includes(secret), `${what} in Redis`).toBe(false);
      expect(urls.join("\n").includes(secret), `${what} in a URL`).toBe(false);
    }
  });
});
