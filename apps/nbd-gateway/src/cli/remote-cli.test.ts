/**
 * The scaled-out shape end to end: `next start` (the production build of apps/web) and
 * `stratus gateway --no-web` side by side on PostgreSQL, Redis and the S3 test server. A person signs up
 * and makes an API token over HTTP (tRPC + next-auth); the CLI, given only STRATUS_URL and STRATUS_TOKEN,
 * creates, lists, resizes, re-keys and deletes a volume (attached meanwhile through the gateway over
 * TLS with a device credential of the user, which opens it with the unlock grant the web process left;
 * plaintext NBD serves only the local admin); once the token is revoked the CLI is refused.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createDeviceCredential, openRuntime } from "@stratus/control";
import { findUserByEmail } from "@stratus/db";
import { createTestDatabase, type TestDatabase } from "@stratus/db/testing";
import { volumePrefix } from "@stratus/storage";
import { S3ObjectStore } from "@stratus/storage/s3-store";
import { startS3TestServer, type S3TestServer } from "@stratus/storage/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../testing/nbd-tools";
import { freePort, startProcess, type TestProcess } from "../testing/processes";
import { deletePrefix, uniqueQueuePrefix } from "../testing/test-redis";

const REPO = fileURLToPath(new URL("../../../../", import.meta.url));
const WEB_DIR = path.join(REPO, "apps/web");
const STRATUS_BIN = path.join(REPO, "apps/nbd-gateway/bin/stratus.mjs");
const NEXT_BIN = path.join(REPO, "node_modules/next/dist/bin/next");
const PASSWORD = "remote-cli-password-1";
const PASS1 = "remote volume passphrase one";
const PASS2 = "remote volume passphrase two";

function exec(command: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number }) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      command,
      args,
      { env: options.env, cwd: options.cwd ?? REPO, timeout: options.timeoutMs ?? 120_000, maxBuffer: 16 * 2 ** 20 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.end(options.input ?? "");
  });
}

describe("the CLI against next start + stratus gateway --no-web", () => {
  let s3: S3TestServer;
  let fixture: TestDatabase;
  let web: TestProcess;
  let gateway: TestProcess;
  let dataDir: string;
  let prefix: string;
  let webUrl: string;
  let nbdPort: number;
  let shared: NodeJS.ProcessEnv;

  beforeAll(async () => {
    // Reuse the production build when scripts/test.sh (or npm start) made one; build it otherwise.
    if (!existsSync(path.join(WEB_DIR, ".next", "BUILD_ID"))) {
      const built = await exec(process.execPath, [NEXT_BIN, "build"], {
        env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
        cwd: WEB_DIR,
        timeoutMs: 300_000,
      });
      if (built.code !== 0) throw new Error(`next build failed:\n${built.stdout}${built.stderr}`);
    }
    [s3, fixture] = await Promise.all([startS3TestServer(), createTestDatabase("postgres")]);
    dataDir = await mkdtemp(path.join(tmpdir(), "stratus-remote-cli-"));
    prefix = uniqueQueuePrefix();
    const webPort = await freePort();
    nbdPort = await freePort();
    webUrl = `http://127.0.0.1:${webPort}`;
    shared = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: (fixture.options as { url: string }).url,
      REDIS_URL: "redis://127.0.0.1:6379",
      STRATUS_S3_ENDPOINT: s3.endpoint,
      STRATUS_S3_BUCKET: s3.bucket,
      STRATUS_S3_REGION: s3.region,
      STRATUS_S3_ACCESS_KEY_ID: s3.accessKeyId,
      STRATUS_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      STRATUS_MASTER_KEY: randomBytes(32).toString("base64"),
      STRATUS_QUEUE_PREFIX: prefix,
      STRATUS_GC_GRACE: "0",
      STRATUS_NBD_PORT: String(nbdPort),
      STRATUS_DATA_DIR: dataDir,
      AUTH_SECRET: randomBytes(32).toString("base64url"),
      STRATUS_KDF_N: "1024",
      // next start defaults to sign-up by invitation; this test's person signs up directly.
      STRATUS_SIGNUP: "open",
      NEXT_TELEMETRY_DISABLED: "1",
    };
    gateway = startProcess(process.execPath, [STRATUS_BIN, "gateway", "--no-web"], {
      cwd: REPO,
      env: { ...shared, STRATUS_CACHE_SIZE: "64M", STRATUS_DIRTY_LIMIT: "16M" },
    });
    web = startProcess(process.execPath, [NEXT_BIN, "start", "-p", String(webPort), "-H", "127.0.0.1"], { cwd: WEB_DIR, env: shared });
    await gateway.waitFor(() => gateway.output().includes('"msg":"stratus ready"'), "the gateway to be ready");
    await web.waitFor(async () => (await fetch(`${webUrl}/api/v1/health`).catch(() => undefined))?.ok === true, "next start to answer");
  }, 400_000);

  afterAll(async () => {
    await web?.stop();
    await gateway?.stop();
    await deletePrefix(prefix);
    await fixture?.dispose();
    await s3?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** tRPC over HTTP as the browser does it (cookie + CSRF header + same Origin). */
  async function trpc<T>(procedure: string, input: unknown, cookie?: string): Promise<T> {
    const response = await fetch(`${webUrl}/api/trpc/${procedure}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-stratus-csrf": "1", origin: webUrl, ...(cookie ? { cookie } : {}) },
      body: JSON.stringify({ json: input }),
    });
    const body = (await response.json()) as { result?: { data: { json: T } }; error?: unknown };
    if (!response.ok) throw new Error(`${procedure}: HTTP ${response.status} ${JSON.stringify(body.error)}`);
    return body.result!.data.json;
  }

  async function signIn(email: string): Promise<string> {
    const csrf = await fetch(`${webUrl}/api/auth/csrf`);
    const { csrfToken } = (await csrf.json()) as { csrfToken: string };
    const cookies = csrf.headers.getSetCookie().map((c) => c.split(";")[0]);
    const response = await fetch(`${webUrl}/api/auth/callback/credentials`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: cookies.join("; "), origin: webUrl },
      body: new URLSearchParams({ email, password: PASSWORD, csrfToken, callbackUrl: `${webUrl}/volumes` }),
    });
    const session = response.headers.getSetCookie().find((c) => c.startsWith("authjs.session-token="));
    if (!session) throw new Error(`sign-in failed: HTTP ${response.status} ${response.headers.get("location")}`);
    return session.split(";")[0]!;
  }

  /** A device credential of the user, created through the control verb with the deployment's settings; returns its PSK identity. */
  async function deviceCredentialFor(email: string): Promise<string> {
    const runtime = await openRuntime({
      dataDir: path.join(dataDir, "device-maker"),
      database: fixture.options,
      store: {
        kind: "s3",
        endpoint: s3.endpoint,
        bucket: s3.bucket,
        region: s3.region,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        forcePathStyle: true,
      },
      redisUrl: "redis://127.0.0.1:6379",
      masterKey: Buffer.from(shared.STRATUS_MASTER_KEY!, "base64"),
      settings: { prefix, gcGraceMs: 0, nbd: { host: "127.0.0.1", port: nbdPort, tls: true }, embedded: false },
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    try {
      const user = await findUserByEmail(runtime.database.db, email);
      const created = await createDeviceCredential({ runtime, actor: { userId: user!.id, via: "session", scope: "write" } }, { name: "test laptop" });
      await writeFile(path.join(dataDir, "device.psk"), created.secret.pskFile, { mode: 0o600 });
      return created.secret.pskIdentity;
    } finally {
      await runtime.close();
    }
  }

  const cli = (token: string, args: string[], input?: string) =>
    exec(process.execPath, [STRATUS_BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, STRATUS_URL: webUrl, STRATUS_TOKEN: token },
      input,
    });

  it("creates, lists, resizes, re-keys and deletes with a token, then is refused once it is revoked", async () => {
    await trpc("account.signUp", { email: "remote@example.com", password: PASSWORD });
    const cookie = await signIn("remote@example.com");
    const { secret, token } = await trpc<{ secret: string; token: { id: string } }>("token.create", { name: "remote cli", scope: "write" }, cookie);

    const created = await cli(
      secret,
      ["volume", "create", "rdisk", "--size", "4M", "--chunk-size", "64K", "--passphrase-stdin", "--no-auto-unlock"],
      `${PASS1}\n`,
    );
    expect(created.stderr).toBe("");
    expect(created.stdout).toMatch(/created volume rdisk \(4 MiB, 64 KiB chunks.*keys: passphrase\)/);

    // Plaintext NBD serves only the local admin: this user's volume is not there.
    expect((await run("nbdinfo", ["--json", `nbd://127.0.0.1:${nbdPort}/rdisk`])).code).not.toBe(0);
    // Over TLS with a device credential of the user, made as the web process would make it. The gateway
    // (another process) opens the volume with the grant the web process left in Redis.
    const uri = `nbds://${await deviceCredentialFor("remote@example.com")}@127.0.0.1:${nbdPort}/rdisk?tls-psk-file=${path.join(dataDir, "device.psk")}`;
    const info = await run("nbdinfo", ["--json", uri]);
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout).exports[0]["export-size"]).toBe(4 * 2 ** 20);
    // nbdsh -u refuses URIs that name local files (the PSK file): connect in a script instead.
    const connect = `h.set_uri_allow_local_file(True); h.connect_uri(${JSON.stringify(uri)})`;
    const wrote = await run("nbdsh", ["-c", connect, "-c", "h.pwrite(b'remote!' * 1000, 0)", "-c", "h.flush()"]);
    expect(wrote.code, wrote.stderr).toBe(0);

    const listed = JSON.parse((await cli(secret, ["volume", "list", "--json"])).stdout) as Array<{ name: string; sizeBytes: number; unlocked: boolean }>;
    expect(listed).toEqual([expect.objectContaining({ name: "rdisk", sizeBytes: 4 * 2 ** 20, unlocked: true })]);

    const resized = await cli(secret, ["volume", "resize", "rdisk", "--size", "8M"]);
    expect(resized.stdout.trim()).toBe("volume rdisk is now 8 MiB");
    const shrinkRefused = await cli(secret, ["volume", "resize", "rdisk", "--size", "2M"]);
    expect(shrinkRefused.code).not.toBe(0);
    expect(shrinkRefused.stderr).toMatch(/type the volume name/);

    const passwd = await cli(secret, ["volume", "passwd", "rdisk", "--passphrase-stdin"], `${PASS1}\n${PASS2}\n`);
    expect(passwd.stdout.trim()).toBe("changed the passphrase of volume rdisk");
    const wrongUnlock = await cli(secret, ["volume", "unlock", "rdisk", "--passphrase-stdin"], `${PASS1}\n`);
    expect(wrongUnlock.stderr).toMatch(/wrong passphrase/);
    expect((await cli(secret, ["volume", "unlock", "rdisk", "--passphrase-stdin"], `${PASS2}\n`)).stdout.trim()).toBe("unlocked volume rdisk");

    const volumeId = (JSON.parse((await cli(secret, ["volume", "list", "--json"])).stdout) as Array<{ id: string }>)[0]!.id;
    const store = new S3ObjectStore({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: s3.bucket,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    try {
      expect((await store.list({ prefix: volumePrefix(volumeId) })).objects.length).toBeGreaterThan(0);
      const deleted = await cli(secret, ["volume", "delete", "rdisk"]);
      expect(deleted.stderr).toBe("");
      expect(deleted.stdout).toMatch(/deleted volume rdisk \(\d+ objects\)/);
      expect((await store.list({ prefix: volumePrefix(volumeId) })).objects).toEqual([]);
    } finally {
      await store.close();
    }

    await trpc("token.revoke", { id: token.id }, cookie);
    const refused = await cli(secret, ["volume", "list"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/invalid, expired or revoked API token/);
    // The secret never reached a log line of either process.
    expect(web.output() + gateway.output()).not.toContain(secret);
    expect(web.output() + gateway.output()).not.toContain(PASS1);
  });
});
