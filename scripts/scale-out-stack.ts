/**
 * The scaled-out topology of docker-compose.yml started natively: `next start` (apps/web) and N
 * `stratus gateway --no-web` processes sharing a fresh PostgreSQL database (127.0.0.1:5432), Redis
 * (127.0.0.1:6379, a key prefix of their own) and an S3 server (s3rver), after the release build
 * (build-release.sh, the steps the Docker image runs). Everything it makes is throwaway: stop()
 * ends the processes and removes the database, the Redis keys, the bucket and the data directories.
 * scripts/scale-out.mjs runs it from a shell; e2e/gateway/scale-out.test.ts drives it.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import pg from "pg";
import { startS3TestServer, waitFor, type S3TestServer } from "@stratus/storage/testing";
import { gatewayProcessEnv } from "../apps/nbd-gateway/bin/gateway-env.mjs";
import { s3GatewayEnv } from "../e2e/harness/bucket";

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const STRATUS_BIN = path.join(ROOT, "apps/nbd-gateway/bin/stratus.mjs");
const NEXT_BIN = path.join(ROOT, "node_modules/next/dist/bin/next");
const READY_TIMEOUT_MS = 90_000;

export interface ScaleOutOptions {
  /** Ports; 0 picks a free one. Defaults: web 3000, gateways 10809, 10810, … */
  webPort?: number;
  nbdPorts?: number[];
  /** PostgreSQL server (a database is created on it); default postgres://postgres@127.0.0.1:5432. */
  postgresServer?: string;
  /** Default redis://127.0.0.1:6379/0. */
  redisUrl?: string;
  /** More settings for every process (e.g. STRATUS_KDF_N for tests). */
  env?: Record<string, string>;
  /** Copy each process's output to stdout, each line after its name. */
  echo?: boolean;
}

export interface ScaleOutGateway {
  name: string;
  nbdPort: number;
  dataDir: string;
}

export interface ScaleOut {
  webUrl: string;
  gateways: ScaleOutGateway[];
  /** The settings every process shares (secrets included: this is a throwaway stack). */
  env: Record<string, string>;
  s3: S3TestServer;
  /** What a process ("web", "gateway-1", …) has printed so far (its last lines). */
  output(name: string): string;
  /** Stops gateway `index` (SIGTERM: it commits first) and starts it again on the same port and data. */
  restartGateway(index: number): Promise<void>;
  stop(): Promise<void>;
}

interface Proc {
  name: string;
  child: ChildProcess;
  lines: string[];
  closed: Promise<void>;
}

export async function startScaleOut(options: ScaleOutOptions = {}): Promise<ScaleOut> {
  const built = spawnSync("bash", [path.join(ROOT, "scripts/build-release.sh")], {
    cwd: ROOT,
    stdio: ["ignore", options.echo ? "inherit" : "pipe", "pipe"],
    encoding: "utf8",
  });
  if (built.status !== 0)
    throw new Error(`scripts/build-release.sh failed (exit ${built.status ?? built.signal})\n${`${built.stdout ?? ""}${built.stderr}`.slice(-4000)}`);

  const undo: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const step of undo.splice(0).reverse()) await step().catch((error: unknown) => console.error("scale-out: a stop step failed:", error));
  };
  const procs = new Map<string, Proc>();
  try {
    const id = randomBytes(4).toString("hex");
    const workDir = await mkdtemp(path.join(os.tmpdir(), "stratus-scale-out-"));
    undo.push(() => rm(workDir, { recursive: true, force: true }));

    const postgresServer = options.postgresServer ?? "postgres://postgres@127.0.0.1:5432";
    const database = `stratus_scale_out_${id}`;
    await onPostgres(postgresServer, `create database ${database}`);
    undo.push(() => onPostgres(postgresServer, `drop database if exists ${database} with (force)`));

    const redisUrl = options.redisUrl ?? "redis://127.0.0.1:6379/0";
    const prefix = `stratus-scale-out-${id}`;
    undo.push(() => deleteKeys(redisUrl, prefix));

    const s3 = await startS3TestServer({ bucket: "stratus" });
    undo.push(() => s3.stop());

    const webPort = await portOrFree(options.webPort ?? 3000);
    const nbdPorts = await Promise.all((options.nbdPorts ?? [10809, 10810]).map(portOrFree));
    const webUrl = `http://127.0.0.1:${webPort}`;
    const env: Record<string, string> = {
      DATABASE_URL: `${postgresServer}/${database}`,
      REDIS_URL: redisUrl,
      STRATUS_QUEUE_PREFIX: prefix,
      STRATUS_MASTER_KEY: randomBytes(32).toString("base64"),
      AUTH_SECRET: randomBytes(32).toString("base64url"),
      AUTH_URL: webUrl,
      AUTH_TRUST_HOST: "true",
      STRATUS_URL: webUrl,
      ...s3GatewayEnv(s3),
      STRATUS_NBD_HOST: "127.0.0.1",
      // The dashboard's attach commands name the first gateway.
      STRATUS_NBD_PORT: String(nbdPorts[0]),
      STRATUS_WEB_HOST: "127.0.0.1",
      STRATUS_WEB_PORT: String(webPort),
      NEXT_TELEMETRY_DISABLED: "1",
      ...options.env,
    };
    const launch = (name: string, args: string[], cwd: string, extra: Record<string, string>) => {
      const proc = spawnProc(name, args, { cwd, env: { ...inheritedEnv(), ...env, ...extra } }, options.echo ?? false);
      procs.set(name, proc);
      return proc;
    };

    const gateways: ScaleOutGateway[] = nbdPorts.map((nbdPort, i) => ({ name: `gateway-${i + 1}`, nbdPort, dataDir: path.join(workDir, `gateway-${i + 1}`) }));
    const startGateway = async (gateway: ScaleOutGateway) => {
      const proc = launch(gateway.name, [STRATUS_BIN, "gateway", "--no-web", "--exit-with-parent"], ROOT, {
        GLIBC_TUNABLES: gatewayProcessEnv(process.env).GLIBC_TUNABLES,
        NODE_OPTIONS: gatewayProcessEnv({}).NODE_OPTIONS,
        STRATUS_DATA_DIR: gateway.dataDir,
        STRATUS_NBD_PORT: String(gateway.nbdPort),
      });
      await waitUntil(proc, () => proc.lines.some((line) => line.includes("stratus ready")));
    };
    // One after another: the first one migrates the database.
    for (const gateway of gateways) {
      await startGateway(gateway);
      undo.push(() => terminate(procs.get(gateway.name)!));
    }

    const web = launch("web", [NEXT_BIN, "start", "-H", "127.0.0.1", "-p", String(webPort)], path.join(ROOT, "apps/web"), {
      NODE_ENV: "production",
      STRATUS_DATA_DIR: path.join(workDir, "web"),
    });
    undo.push(() => terminate(procs.get("web")!));
    await waitUntil(web, () => answers(`${webUrl}/api/v1/health`));

    return {
      webUrl,
      gateways,
      env,
      s3,
      output: (name) => procs.get(name)?.lines.join("\n") ?? "",
      restartGateway: async (index) => {
        const gateway = gateways[index]!;
        await terminate(procs.get(gateway.name)!);
        await startGateway(gateway);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** `node scripts/scale-out.mjs [--web-port N] [--nbd-port N] [--gateways N]`: runs until Ctrl-C. */
export async function runScaleOut(args: string[]): Promise<void> {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({ args, options: { "web-port": { type: "string" }, "nbd-port": { type: "string" }, gateways: { type: "string" } } });
  const count = Number(values.gateways ?? 2);
  const firstNbd = Number(values["nbd-port"] ?? 10809);
  const stack = await startScaleOut({
    webPort: Number(values["web-port"] ?? 3000),
    nbdPorts: Array.from({ length: count }, (_, i) => firstNbd + i),
    echo: true,
  });
  const lines = [
    "",
    "Stratus scaled out (Ctrl-C stops it all and removes its database, Redis keys, bucket and data):",
    `  dashboard   ${stack.webUrl}   (the first admin signs up with the link in web's log above)`,
    ...stack.gateways.map((g) => `  ${g.name.padEnd(11)} nbds://127.0.0.1:${g.nbdPort}   (data ${g.dataDir})`),
    `  PostgreSQL  ${stack.env.DATABASE_URL}`,
    `  Redis       ${stack.env.REDIS_URL}   (prefix ${stack.env.STRATUS_QUEUE_PREFIX})`,
    `  S3          ${stack.s3.endpoint}   (bucket ${stack.s3.bucket})`,
    "",
  ];
  process.stdout.write(lines.join("\n") + "\n");
  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => resolve());
  });
  process.stdout.write("scale-out: stopping…\n");
  await stack.stop();
}

/** The caller's environment without Stratus, auth or database settings of its own. */
function inheritedEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(STRATUS_|AUTH_|GLIBC_TUNABLES$|DATABASE_URL$|REDIS_URL$|NODE_OPTIONS$|VITEST)/.test(key)) continue;
    env[key] = value;
  }
  return env;
}

function spawnProc(name: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }, echo: boolean): Proc {
  // A process group of its own: the terminal's Ctrl-C reaches this script only, which stops the
  // processes in order, and a stop reaches whatever a process started.
  const child = spawn(process.execPath, args, { ...options, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const lines: string[] = [];
  const keep = (data: Buffer) => {
    for (const line of data.toString("utf8").split("\n")) {
      if (line.trim() === "") continue;
      lines.push(line);
      if (echo) process.stdout.write(`[${name}] ${line}\n`);
    }
    if (lines.length > 2000) lines.splice(0, lines.length - 2000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const killOnExit = () => signalGroup(child, "SIGKILL");
  process.once("exit", killOnExit);
  void closed.then(() => process.off("exit", killOnExit));
  return { name, child, lines, closed };
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/**
 * SIGTERM to a process started in a group of its own, SIGKILL if it has not closed after `graceMs`
 * (the gateway commits for up to STRATUS_STOP_TIMEOUT, 10 s, before it exits).
 */
export async function stopGroup(child: ChildProcess, closed: Promise<unknown>, graceMs = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  signalGroup(child, "SIGTERM");
  const timer = setTimeout(() => signalGroup(child, "SIGKILL"), graceMs);
  await closed;
  clearTimeout(timer);
}

const terminate = (proc: Proc) => stopGroup(proc.child, proc.closed);

/** Polls `ready` until it holds; fails at once if the process exits, with its last lines. */
async function waitUntil(proc: Proc, ready: () => boolean | Promise<boolean>): Promise<void> {
  let failure: string | undefined;
  try {
    await waitFor(
      async () => {
        if (await ready()) return true;
        if (proc.child.exitCode === null && proc.child.signalCode === null) return false;
        failure = `exited (${proc.child.exitCode ?? proc.child.signalCode})`;
        return true;
      },
      `${proc.name} to be ready`,
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200 },
    );
  } catch {
    failure = `was not ready within ${READY_TIMEOUT_MS} ms`;
  }
  if (failure !== undefined) throw new Error(`${proc.name} ${failure}\n--- its last lines ---\n${proc.lines.slice(-40).join("\n")}`);
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}

async function portOrFree(port: number): Promise<number> {
  if (port !== 0) return port;
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

async function onPostgres(server: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: `${server}/postgres` });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Removes every Redis key under `prefix` (queues, live state, unlock grants, rate limits). */
export async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}
