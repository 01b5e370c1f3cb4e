/**
 * The scaled-out stack as scripts/scale-out.mjs starts it (the release build, `next start`, two
 * `stratus gateway --no-web`, PostgreSQL, Redis, s3rver), driven as a user would: sign up with the
 * setup token from the web's log and make a volume over HTTP; write it through one gateway and read it
 * back through the other (TLS-PSK with a device credential: plaintext NBD serves only the local admin);
 * lock and unlock it in the web and attach through a gateway restarted since; the web refuses to
 * delete it while a client is attached; once detached, the delete leaves its bucket prefix empty.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { waitFor } from "@stratus/storage/testing";
import { startScaleOut, type ScaleOut } from "../../scripts/scale-out-stack";
import { listObjects, MiB, openBucket, REPO_ROOT, run, runOk, seededBytes } from "../harness";

const PASSWORD = "scale-out-password-1";
const PASSPHRASE = "scale-out passphrase";

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

describe("the scale-out stack", () => {
  let stack: ScaleOut;
  let workDir: string;
  let token: string;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), "stratus-scale-out-test-"));
    stack = await startScaleOut({ webPort: 0, nbdPorts: [0, 0], env: { STRATUS_KDF_N: "1024", STRATUS_LOG_LEVEL: "info" } });
  });
  afterAll(async () => {
    await stack?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  async function call(method: string, route: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${token}` }): Promise<Answer> {
    const response = await fetch(`${stack.webUrl}${route}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
  }

  /** A tRPC mutation with the session cookie, as the dashboard sends it. */
  async function mutate(procedure: string, input: unknown, cookie = ""): Promise<Answer> {
    const headers = { "x-stratus-csrf": "1", origin: stack.webUrl, ...(cookie ? { cookie } : {}) };
    const answer = await call("POST", `/api/trpc/${procedure}`, { json: input }, headers);
    return {
      status: answer.status,
      body: ((answer.body.result as { data?: { json?: unknown } } | undefined)?.data?.json ?? answer.body) as Record<string, unknown>,
    };
  }

  async function signIn(email: string): Promise<string> {
    const csrf = await fetch(`${stack.webUrl}/api/auth/csrf`);
    const { csrfToken } = (await csrf.json()) as { csrfToken: string };
    const jar = csrf.headers.getSetCookie().map((c) => c.split(";")[0]);
    const response = await fetch(`${stack.webUrl}/api/auth/callback/credentials`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar.join("; "), origin: stack.webUrl },
      body: new URLSearchParams({ email, password: PASSWORD, csrfToken, callbackUrl: `${stack.webUrl}/volumes` }),
    });
    return [...jar, ...response.headers.getSetCookie().map((c) => c.split(";")[0])].join("; ");
  }

  /** The volume as an NBD URI through gateway `index`, with the device's pre-shared key. */
  let deviceUri: (index: number) => string;

  async function copyIn(index: number, data: Buffer): Promise<void> {
    const file = path.join(workDir, "in.img");
    await writeFile(file, data);
    await runOk("nbdcopy", ["--flush", file, deviceUri(index)], { timeoutMs: 60_000 });
  }

  async function readBack(index: number, length: number): Promise<Buffer> {
    const file = path.join(workDir, "out.img");
    await runOk("nbdcopy", [deviceUri(index), file], { timeoutMs: 60_000 });
    return (await readFile(file)).subarray(0, length);
  }

  it("runs a volume made in the web through both gateways, unlock, restart and delete", async () => {
    onTestFailed(() => {
      for (const name of ["web", ...stack.gateways.map((g) => g.name)])
        console.error(`--- ${name} ---\n${stack.output(name).split("\n").slice(-30).join("\n")}`);
    });
    // The first admin signs up with the one-time setup token `next start` logs.
    await waitFor(() => /stratus_inv_[A-Za-z0-9_-]{32}/.test(stack.output("web")), "the setup token in the web's log", { timeoutMs: 30_000, intervalMs: 200 });
    const invitation = /stratus_inv_[A-Za-z0-9_-]{32}/.exec(stack.output("web"))![0];
    expect((await mutate("account.signUp", { email: "admin@example.test", password: PASSWORD, invitation })).status).toBe(200);
    const cookie = await signIn("admin@example.test");
    const minted = await mutate("token.create", { name: "scale-out test", scope: "write" }, cookie);
    expect(minted.status).toBe(200);
    token = minted.body.secret as string;

    const created = await call("POST", "/api/v1/volumes", { name: "shared", size: "16M", durability: "cloud", passphrase: PASSPHRASE, autoUnlock: false });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const volumeId = created.body.id as string;
    const device = await call("POST", "/api/v1/devices", { name: "laptop", volumes: ["shared"] });
    expect(device.status, JSON.stringify(device.body)).toBe(201);
    const pskFile = path.join(workDir, "keys.psk");
    await writeFile(pskFile, (device.body.secret as { pskFile: string }).pskFile, { mode: 0o600 });
    const deviceId = (device.body.credential as { id: string }).id;
    deviceUri = (index) => `nbds://${deviceId}@127.0.0.1:${stack.gateways[index]!.nbdPort}/shared?tls-psk-file=${pskFile}`;

    // Written through gateway 1 (a cloud FLUSH returns once committed), read through gateway 2.
    const data = seededBytes(22)(4 * MiB);
    await copyIn(0, data);
    expect((await readBack(1, data.length)).equals(data)).toBe(true);

    // Locked in the web: nothing attaches. Unlocked, a gateway restarted since opens it from the grant.
    expect((await mutate("volume.lock", { name: "shared" }, cookie)).status).toBe(200);
    expect((await run("nbdinfo", [deviceUri(1)], { timeoutMs: 30_000 })).code).not.toBe(0);
    await waitFor(() => stack.output("gateway-2").includes("volume is locked: not attachable"), "gateway 2 saying the volume is locked", {
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    expect((await call("POST", "/api/v1/volumes/shared/unlock", { passphrase: PASSPHRASE })).status).toBe(200);
    await stack.restartGateway(1);
    expect((await readBack(1, data.length)).equals(data)).toBe(true);

    // Attached (a copy held open on standard input): the web refuses the delete.
    const holder = spawn("nbdcopy", ["--flush", "-", deviceUri(0)], { stdio: ["pipe", "ignore", "pipe"] });
    const held = new Promise<number | null>((resolve) => holder.once("close", resolve));
    try {
      await waitFor(async () => (await call("GET", "/api/v1/volumes/shared")).body.attached !== null, "the volume shown attached", {
        timeoutMs: 20_000,
        intervalMs: 200,
      });
      expect((await call("GET", "/api/v1/volumes/shared")).body.lease).toMatchObject({ deviceCredentialId: deviceId });
      const refused = await call("DELETE", "/api/v1/volumes/shared", { confirm: "shared" });
      expect(refused.status).toBe(409);
      expect(JSON.stringify(refused.body)).toContain("is attached");
    } finally {
      holder.stdin.end();
    }
    expect(await held).toBe(0);

    // Detached: the delete goes through and the volume's objects are gone.
    await waitFor(async () => (await call("GET", "/api/v1/volumes/shared")).body.attached === null, "the volume detached", {
      timeoutMs: 20_000,
      intervalMs: 200,
    });
    expect((await call("DELETE", "/api/v1/volumes/shared", { confirm: "shared" })).status).toBe(202);
    await waitFor(async () => (await call("GET", "/api/v1/volumes/shared/delete-progress")).body.state === "completed", "the delete job done", {
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    const bucket = openBucket(stack.s3);
    try {
      expect(await listObjects(bucket, `vol/${volumeId}/`)).toEqual([]);
    } finally {
      await bucket.close();
    }
  });
});

// No Docker engine here: what can be checked of the image and the compose file without one.
describe("the Docker route", () => {
  it("builds with the script the native stack runs, and runs as a non-root user", async () => {
    const dockerfile = await readFile(path.join(REPO_ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^RUN bash scripts\/build-release\.sh/m);
    expect(dockerfile).toMatch(/^USER node$/m);
  });

  it("pins its images and has no default for any setting it interpolates", async () => {
    const compose = await readFile(path.join(REPO_ROOT, "docker-compose.yml"), "utf8");
    const settings = [...compose.matchAll(/\$\{([A-Z_]+)([^}]*)\}/g)];
    expect(settings.filter(([, , rest]) => !rest!.startsWith(":?")).map(([whole]) => whole)).toEqual([]);
    for (const name of ["POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINIO_ROOT_PASSWORD", "STRATUS_MASTER_KEY", "AUTH_SECRET", "STRATUS_QUEUE_PREFIX"]) {
      expect(settings.map(([, setting]) => setting)).toContain(name);
    }
    const images = [...compose.matchAll(/^\s+image: (\S+)$/gm)].map(([, image]) => image!);
    expect(images.filter((image) => image !== "stratus:local" && !/:(\d|RELEASE\.)/.test(image))).toEqual([]);
  });
});
