/**
 * The dashboard on its own (`next start`, the scaled-out shape), as an operator starts it: it refuses to
 * start without the settings it must share with the gateways; by default sign-up is by invitation, and
 * the first admin gets in with the setup token from its log (the only log line holding it); and a
 * client cannot dodge the per-address sign-in limit with x-stratus-peer or X-Forwarded-For headers.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createTestDatabase, type TestDatabase } from "@stratus/db/testing";
import { scrapeMetrics } from "@stratus/control/testing/prometheus-text";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startProcess, type TestProcess } from "../testing/processes";
import { deletePrefix, uniqueQueuePrefix } from "../testing/test-redis";

const REPO = fileURLToPath(new URL("../../../../", import.meta.url));
const WEB_DIR = path.join(REPO, "apps/web");
const NEXT_BIN = path.join(REPO, "node_modules/next/dist/bin/next");
const PASSWORD = "web-process-password-8";

function exec(command: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd: string; timeoutMs: number }) {
  return new Promise<{ code: number; output: string }>((resolve) => {
    execFile(command, args, { env: options.env, cwd: options.cwd, timeout: options.timeoutMs, maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

describe("the dashboard under next start", () => {
  let fixture: TestDatabase;
  let dataDir: string;
  let prefix: string;
  let web: TestProcess;
  let webUrl: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    if (!existsSync(path.join(WEB_DIR, ".next", "BUILD_ID"))) {
      const built = await exec(process.execPath, [NEXT_BIN, "build"], {
        env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
        cwd: WEB_DIR,
        timeoutMs: 300_000,
      });
      if (built.code !== 0) throw new Error(`next build failed:\n${built.output}`);
    }
    fixture = await createTestDatabase("postgres");
    dataDir = await mkdtemp(path.join(tmpdir(), "stratus-web-process-"));
    prefix = uniqueQueuePrefix();
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: (fixture.options as { url: string }).url,
      REDIS_URL: "redis://127.0.0.1:6379",
      STRATUS_DATA_DIR: dataDir,
      STRATUS_MASTER_KEY: randomBytes(32).toString("base64"),
      STRATUS_QUEUE_PREFIX: prefix,
      AUTH_SECRET: randomBytes(32).toString("base64url"),
      STRATUS_KDF_N: "1024",
      NEXT_TELEMETRY_DISABLED: "1",
    };
  }, 400_000);

  const METRICS_TOKEN = "web-process-metrics-token-1f9b";
  let metricsPort: number;

  afterAll(async () => {
    await web?.stop();
    await deletePrefix(prefix);
    await fixture?.dispose();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("refuses to start without the master key, AUTH_SECRET and queue prefix it shares with the gateways", async () => {
    const port = await freePort();
    const { STRATUS_MASTER_KEY: _key, AUTH_SECRET: _secret, STRATUS_QUEUE_PREFIX: _prefix, ...partial } = env;
    const refused = await exec(process.execPath, [NEXT_BIN, "start", "-p", String(port), "-H", "127.0.0.1"], { env: partial, cwd: WEB_DIR, timeoutMs: 60_000 });
    expect(refused.code).toBe(1);
    expect(refused.output).toContain("the dashboard cannot start");
    expect(refused.output).toMatch(/not set: STRATUS_MASTER_KEY, AUTH_SECRET, STRATUS_QUEUE_PREFIX/);
    const noPrefix = await exec(process.execPath, [NEXT_BIN, "start", "-p", String(port), "-H", "127.0.0.1"], {
      env: { ...env, STRATUS_QUEUE_PREFIX: undefined },
      cwd: WEB_DIR,
      timeoutMs: 60_000,
    });
    expect([noPrefix.code, /not set: STRATUS_QUEUE_PREFIX \(/.test(noPrefix.output)]).toEqual([1, true]);
  });

  async function trpc(procedure: string, input: unknown): Promise<{ status: number; body: string }> {
    const response = await fetch(`${webUrl}/api/trpc/${procedure}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-stratus-csrf": "1", origin: webUrl },
      body: JSON.stringify({ json: input }),
    });
    return { status: response.status, body: await response.text() };
  }

  async function signIn(email: string, password: string, headers: Record<string, string>): Promise<string> {
    const csrf = await fetch(`${webUrl}/api/auth/csrf`, { headers });
    const { csrfToken } = (await csrf.json()) as { csrfToken: string };
    const cookies = csrf.headers.getSetCookie().map((c) => c.split(";")[0]);
    const response = await fetch(`${webUrl}/api/auth/callback/credentials`, {
      method: "POST",
      redirect: "manual",
      headers: { ...headers, "content-type": "application/x-www-form-urlencoded", cookie: cookies.join("; "), origin: webUrl },
      body: new URLSearchParams({ email, password, csrfToken, callbackUrl: `${webUrl}/volumes` }),
    });
    return response.headers.get("location") ?? "";
  }

  it("is invitation-only by default: the setup token in the log makes the first admin, once", async () => {
    const port = await freePort();
    webUrl = `http://127.0.0.1:${port}`;
    metricsPort = await freePort();
    const metricsEnv = { STRATUS_METRICS_LISTEN: `127.0.0.1:${metricsPort}`, STRATUS_METRICS_TOKEN: METRICS_TOKEN };
    web = startProcess(process.execPath, [NEXT_BIN, "start", "-p", String(port), "-H", "127.0.0.1"], { cwd: WEB_DIR, env: { ...env, ...metricsEnv } });
    await web.waitFor(() => /stratus_inv_[A-Za-z0-9_-]{32}/.test(web.output()), "the setup token in the log");
    const token = /stratus_inv_[A-Za-z0-9_-]{32}/.exec(web.output())![0];
    expect(web.output()).toContain(`/sign-up#invitation=${token}`);

    const open = await trpc("account.signUp", { email: "walk-in@example.com", password: PASSWORD });
    expect(open.status).toBe(403);
    expect(open.body).toContain("sign-up here is by invitation");
    const first = await trpc("account.signUp", { email: "admin@example.com", password: PASSWORD, invitation: token });
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body).result.data.json).toMatchObject({ email: "admin@example.com", isAdmin: true });
    expect((await trpc("account.signUp", { email: "second@example.com", password: PASSWORD, invitation: token })).status).toBe(403);
    // The token appears on the one line that announced it, and nowhere else.
    const lines = web
      .output()
      .split("\n")
      .filter((line) => line.includes(token));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("the first admin signs up at");
  });

  it("takes the client address from the socket: forged peer headers do not escape the per-address limit", async () => {
    for (let i = 0; i < 10; i++) {
      const forged = { "x-stratus-peer": `198.51.100.${i}`, "x-forwarded-for": `203.0.113.${i}`, "x-real-ip": `192.0.2.${i}` };
      expect(await signIn(`nobody${i}@example.com`, "wrong password", forged)).toContain("error=CredentialsSignin");
    }
    const limited = await signIn("admin@example.com", PASSWORD, { "x-stratus-peer": "198.51.100.77", "x-forwarded-for": "203.0.113.77" });
    expect(limited).toMatch(/code=rate_limited_\d+m/);
  });
  it("serves its process metrics on STRATUS_METRICS_LISTEN, only with the bearer token, which it never logs", async () => {
    const url = `http://127.0.0.1:${metricsPort}/metrics`;
    await web.waitFor(() => web.output().includes("metrics served"), "the metrics line in the log");
    expect((await fetch(url)).status).toBe(401);
    const families = await scrapeMetrics(url, METRICS_TOKEN);
    expect(families.get("stratus_web_process")?.samples[0]?.value).toBe(1);
    expect(families.has("nodejs_eventloop_lag_seconds")).toBe(true);
    expect(web.output()).not.toContain(METRICS_TOKEN);
  });
});
