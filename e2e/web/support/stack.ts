/**
 * The scaled-out Stratus stack the dashboard test runs against, as an operator would run it: a fresh
 * PostgreSQL database, Redis (a prefix of its own), the S3 test server, `stratus gateway --no-web` and
 * `next start` in apps/web (the production build), all sharing one configuration and on free ports.
 * Each process's output is kept (for failure messages and the secrets grep) and every process is
 * stopped on teardown, even when start-up fails halfway.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { startS3TestServer, type S3TestServer } from "@stratus/storage/testing";
import { freePort } from "../../harness/ports";
import { REPO_ROOT, STRATUS_BIN } from "../../harness/repo";
import { deleteKeys, stopGroup } from "../../../scripts/scale-out-stack";

const POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432";
const REDIS_URL = "redis://127.0.0.1:6379/0";

export interface StackInfo {
  webUrl: string;
  nbdPort: number;
  /** Environment shared by the gateway, the web app and the CLI (no secrets of the test user). */
  env: Record<string, string>;
  s3: { endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string };
  /** Files holding each process's output, for the secrets grep. */
  logFiles: { gateway: string; web: string };
  masterKey: string;
  /** The gateway's STRATUS_DATA_DIR (its cli-token file holds the local admin's API token). */
  gatewayDataDir: string;
}

export interface RunningStack extends StackInfo {
  stop(): Promise<void>;
}

interface Proc {
  name: string;
  child: ChildProcess;
  output: string[];
  exited: Promise<void>;
}

export interface StackOptions {
  /** Names this stack's log files (`NAME-gateway.log`); default: the shared dashboard stack. */
  name?: string;
  /** Where the gateway serves NBD (off loopback it requires TLS); default 127.0.0.1. */
  nbdHost?: string;
  /** Where the web app listens; default 127.0.0.1. */
  webHost?: string;
  /** Extra environment for the gateway and the web app. */
  env?: Record<string, string>;
}

export async function startStack(options: StackOptions = {}): Promise<RunningStack> {
  const undo: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of undo.reverse()) await step().catch((error: unknown) => console.error("teardown step failed:", error));
  };
  try {
    const workDir = await mkdtemp(path.join(os.tmpdir(), "stratus-web-e2e-"));
    undo.push(() => rm(workDir, { recursive: true, force: true }));

    const dbName = `stratus_web_e2e_${randomBytes(6).toString("hex")}`;
    await maintenance((client) => client.query(`create database ${dbName}`));
    undo.push(() => maintenance((client) => client.query(`drop database if exists ${dbName} with (force)`)).then(() => undefined));

    const prefix = `stratus-web-e2e-${randomBytes(4).toString("hex")}`;
    undo.push(() => deleteKeys(REDIS_URL, prefix));

    const s3: S3TestServer = await startS3TestServer({ bucket: "stratus-web-e2e" });
    undo.push(() => s3.stop());

    const nbdPort = await freePort();
    const webPort = await freePort();
    const webHost = options.webHost ?? "127.0.0.1";
    const webUrl = `http://${webHost}:${webPort}`;
    const masterKey = randomBytes(32).toString("base64");
    const env: Record<string, string> = {
      DATABASE_URL: `${POSTGRES_SERVER}/${dbName}`,
      REDIS_URL,
      STRATUS_QUEUE_PREFIX: prefix,
      STRATUS_MASTER_KEY: masterKey,
      STRATUS_S3_ENDPOINT: s3.endpoint,
      STRATUS_S3_BUCKET: s3.bucket,
      STRATUS_S3_REGION: s3.region,
      STRATUS_S3_ACCESS_KEY_ID: s3.accessKeyId,
      STRATUS_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      STRATUS_S3_FORCE_PATH_STYLE: "true",
      STRATUS_NBD_HOST: options.nbdHost ?? "127.0.0.1",
      STRATUS_NBD_PORT: String(nbdPort),
      STRATUS_WEB_HOST: webHost,
      STRATUS_WEB_PORT: String(webPort),
      STRATUS_URL: webUrl,
      STRATUS_COMMIT_INTERVAL: "1s",
      STRATUS_GC_GRACE: "1s",
      STRATUS_LOG_LEVEL: "info",
      AUTH_SECRET: randomBytes(32).toString("base64"),
      AUTH_URL: webUrl,
      AUTH_TRUST_HOST: "true",
      // The web process's scrypt cost for passwords and passphrases, lowered for test speed only.
      STRATUS_KDF_N: "1024",
      // next start defaults to sign-up by invitation; the specs sign up directly.
      STRATUS_SIGNUP: "open",
      NEXT_TELEMETRY_DISABLED: "1",
      ...options.env,
    };

    const gatewayDataDir = path.join(workDir, "gateway");
    const gateway = launch("gateway", process.execPath, [STRATUS_BIN, "gateway", "--no-web"], {
      cwd: REPO_ROOT,
      env: { ...baseEnv(), ...env, STRATUS_DATA_DIR: gatewayDataDir },
    });
    undo.push(() => terminate(gateway));
    // The gateway migrates the database; the web app starts once it is ready.
    await waitForOutput(gateway, (line) => line.includes('"stratus ready"'), 90_000);

    const nextBin = path.join(REPO_ROOT, "node_modules/next/dist/bin/next");
    const web = launch("web", process.execPath, [nextBin, "start", "-H", webHost, "-p", String(webPort)], {
      cwd: path.join(REPO_ROOT, "apps/web"),
      env: { ...baseEnv(), ...env, NODE_ENV: "production", STRATUS_DATA_DIR: path.join(workDir, "web") },
    });
    undo.push(() => terminate(web));
    await waitForHttp(web, `${webUrl}/sign-in`, 60_000);

    // Kept after the run (e2e/web/.run/, gitignored) for whoever debugs a failure.
    const logDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "../.run");
    await mkdir(logDir, { recursive: true });
    const prefixName = options.name ? `${options.name}-` : "";
    const logFiles = { gateway: path.join(logDir, `${prefixName}gateway.log`), web: path.join(logDir, `${prefixName}web.log`) };
    const info: StackInfo = {
      webUrl,
      nbdPort,
      env,
      s3: { endpoint: s3.endpoint, bucket: s3.bucket, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      logFiles,
      masterKey,
      gatewayDataDir,
    };
    // Output goes to files the test can read (the test runs in another process than this setup).
    const { createWriteStream } = await import("node:fs");
    for (const [proc, file] of [
      [gateway, logFiles.gateway],
      [web, logFiles.web],
    ] as const) {
      const stream = createWriteStream(file, { flags: "w" });
      stream.write(proc.output.join("\n") + "\n");
      proc.child.stdout?.on("data", (d: Buffer) => stream.write(d));
      proc.child.stderr?.on("data", (d: Buffer) => stream.write(d));
      undo.push(() => new Promise<void>((resolve) => stream.end(resolve)));
    }
    return { ...info, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The runner's environment without any Stratus or auth configuration of its own. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith("STRATUS_") || key.startsWith("AUTH_") || key === "DATABASE_URL" || key === "REDIS_URL" || key.startsWith("PLAYWRIGHT_")) continue;
    env[key] = value;
  }
  return env;
}

function launch(name: string, command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Proc {
  // Own process group: teardown kills whatever the process started too.
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const output: string[] = [];
  const keep = (data: Buffer) => {
    for (const line of data.toString("utf8").split("\n")) if (line.trim() !== "") output.push(line);
    if (output.length > 2000) output.splice(0, output.length - 2000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  process.once("exit", () => killGroup(child, "SIGKILL"));
  return { name, child, output, exited };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

const terminate = (proc: Proc) => stopGroup(proc.child, proc.exited);

function describe(proc: Proc): string {
  return `--- last ${proc.name} output ---\n${proc.output.slice(-40).join("\n")}`;
}

function waitForOutput(proc: Proc, match: (line: string) => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (proc.output.some(match)) return done(resolve);
    };
    const timer = setTimeout(() => done(() => reject(new Error(`${proc.name} not ready within ${timeoutMs} ms\n${describe(proc)}`))), timeoutMs);
    const onData = () => setImmediate(check);
    const onClose = () => done(() => reject(new Error(`${proc.name} exited before it was ready\n${describe(proc)}`)));
    const done = (settle: () => void) => {
      clearTimeout(timer);
      proc.child.stdout!.off("data", onData);
      proc.child.off("close", onClose);
      settle();
    };
    proc.child.stdout!.on("data", onData);
    proc.child.once("close", onClose);
    check();
  });
}

async function waitForHttp(proc: Proc, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited before it answered ${url}\n${describe(proc)}`);
    try {
      const response = await fetch(url, { redirect: "manual" });
      if (response.status < 500) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms\n${describe(proc)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function maintenance<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${POSTGRES_SERVER}/postgres` });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
