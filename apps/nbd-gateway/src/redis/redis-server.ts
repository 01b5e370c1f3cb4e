/**
 * Redis for BullMQ: REDIS_URL's server, or (the embedded default) a private `redis-server` from PATH
 * on a unix socket in the data dir, so nothing else on the machine reaches it, with persistence off:
 * the cache journal re-queues dirty chunks at start, and a server that dies is started again. A gateway killed with SIGKILL leaves its child
 * to the parent-death signal (setpriv), or to the next start, which ends it by its pid file.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis, type RedisOptions } from "ioredis";
import { StartupError } from "@stratus/control";
import type { Logger } from "../logger";

/** sun_path is 108 bytes with the terminating NUL; stay a little under it. */
const MAX_SOCKET_PATH_BYTES = 100;
const START_TIMEOUT_MS = 15_000;
/** Waits between attempts to restart a private redis-server that died: doubling, capped. */
const RESTART_BACKOFF_MS = 250;
const RESTART_BACKOFF_MAX_MS = 5_000;
/** A server that ran less than this before it died counts as failing to start. */
const QUICK_EXIT_MS = 10_000;

export interface RedisEndpoint {
  /** ioredis options for a new connection (BullMQ makes its own from these). */
  options: RedisOptions;
  /** For logs: the URL without credentials, or the socket path. */
  where: string;
  /** Stops the private server (no-op for REDIS_URL). Safe to call twice. */
  stop(): Promise<void>;
  /** Called each time the private server was started again after it died (never for REDIS_URL). */
  onRestart(listener: () => void): void;
}

export async function openRedis(config: { redisUrl: string | undefined; dataDir: string }, logger: Logger): Promise<RedisEndpoint> {
  if (config.redisUrl) {
    const options = redisOptionsFromUrl(config.redisUrl);
    await pingOrExplain(options, `Redis at ${describeUrl(config.redisUrl)} (REDIS_URL)`);
    return { options, where: describeUrl(config.redisUrl), stop: async () => undefined, onRestart: () => undefined };
  }
  return startPrivateRedis(config.dataDir, logger);
}

export function redisOptionsFromUrl(url: string): RedisOptions {
  const parsed = new URL(url);
  return {
    host: parsed.hostname || "127.0.0.1",
    port: parsed.port ? Number(parsed.port) : 6379,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0,
    tls: parsed.protocol === "rediss:" ? {} : undefined,
  };
}

function describeUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

async function startPrivateRedis(dataDir: string, logger: Logger): Promise<RedisEndpoint> {
  const pidFile = path.join(dataDir, "redis.pid");
  await stopOrphan(pidFile, logger);

  let socket = path.join(dataDir, "redis.sock");
  let socketDir: string | undefined;
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES) {
    // A unix socket path cannot be longer than ~107 bytes: use a private (0700) directory in /tmp.
    socketDir = await mkdtemp(path.join(tmpdir(), "stratus-redis-"));
    socket = path.join(socketDir, "redis.sock");
  }
  const options: RedisOptions = { path: socket };

  let child: ChildProcess;
  try {
    child = await launchRedis(socket, pidFile);
  } catch (error) {
    await cleanupDir(socketDir);
    throw error;
  }
  // Last resort if the process exits without stop(): a SIGTERM to the child is synchronous.
  const killOnExit = () => child.kill("SIGTERM");
  process.once("exit", killOnExit);
  logger.info({ socket, pid: child.pid }, "private redis-server started");

  // Supervision: a redis-server that dies under a running gateway is started again (empty, since
  // persistence is off); listeners put back what lived in it (queued uploads).
  const restartListeners: Array<() => void> = [];
  let stopping = false;
  let startedAt = Date.now();
  // A server that keeps dying right after each start is restarted with a growing wait, not in a spin.
  let quickExits = 0;
  const supervise = (running: ChildProcess) =>
    running.once("exit", (code, signal) => {
      if (stopping) return;
      quickExits = Date.now() - startedAt < QUICK_EXIT_MS ? quickExits + 1 : 0;
      logger.warn({ pid: running.pid, code, signal }, "the private redis-server exited; restarting it");
      void restart(quickExits);
    });
  const restart = async (firstAttempt: number) => {
    for (let attempt = firstAttempt; !stopping; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(RESTART_BACKOFF_MS * 2 ** (attempt - 1), RESTART_BACKOFF_MAX_MS)));
      if (stopping) return;
      try {
        const restarted = await launchRedis(socket, pidFile);
        if (stopping) {
          restarted.kill("SIGTERM");
          return;
        }
        child = restarted;
        startedAt = Date.now();
        supervise(restarted);
        logger.info({ socket, pid: restarted.pid }, "private redis-server restarted");
        for (const listener of restartListeners) listener();
        return;
      } catch (error) {
        logger.error({ err: error }, "cannot restart the private redis-server; trying again");
      }
    }
  };
  supervise(child);

  let stopped: Promise<void> | undefined;
  return {
    options,
    where: socket,
    onRestart: (listener) => restartListeners.push(listener),
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        process.off("exit", killOnExit);
        await stopChild(child);
        await rm(pidFile, { force: true });
        await unlink(socket).catch(() => undefined);
        await cleanupDir(socketDir);
      })()),
  };
}

/** Starts redis-server on the socket and waits until it answers; records its pid for the next start. */
async function launchRedis(socket: string, pidFile: string): Promise<ChildProcess> {
  await unlink(socket).catch(() => undefined);
  const args = ["--port", "0", "--unixsocket", socket, "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--daemonize", "no"];
  // Its own process group: a terminal's Ctrl-C reaches the gateway only, which stops Redis last, after
  // the final commits. The parent-death signal ends it should the gateway die without stopping it.
  const deathSignal = commandOnPath("setpriv") && commandOnPath("redis-server") ? ["setpriv", "--pdeathsig", "TERM", "--"] : [];
  const [command, ...prefix] = [...deathSignal, "redis-server"];
  const child = spawn(command!, [...prefix, ...args], { stdio: ["ignore", "pipe", "pipe"], detached: true });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString("utf8"));
    if (output.length > 50) output.shift();
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);

  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once("spawn", () => resolve(undefined));
    child.once("error", (error) => resolve(error));
  });
  if (spawned) {
    if ((spawned as NodeJS.ErrnoException).code === "ENOENT") {
      throw new StartupError(
        "redis-server is not installed: install the Debian package redis-server (`apt-get install redis-server`), or set REDIS_URL to a Redis server",
        { cause: spawned },
      );
    }
    throw new StartupError(`cannot start redis-server: ${spawned.message}`, { cause: spawned });
  }
  await writeFile(pidFile, `${child.pid}\n${socket}\n`, { mode: 0o600 });
  try {
    await waitForRedis({ path: socket }, child, output);
  } catch (error) {
    child.kill("SIGKILL");
    await rm(pidFile, { force: true });
    throw error;
  }
  return child;
}

/** Whether an executable of this name is on PATH (as the shell finds it). */
function commandOnPath(name: string): boolean {
  return spawnSync("sh", ["-c", 'command -v "$1" >/dev/null', "sh", name]).status === 0;
}

async function waitForRedis(options: RedisOptions, child: ChildProcess, output: string[]): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let exited: string | undefined;
  child.once("exit", (code, signal) => (exited = `exited with ${signal ?? `code ${code}`}`));
  for (;;) {
    if (exited) throw new StartupError(`redis-server ${exited}: ${output.join("").trim().split("\n").slice(-3).join(" | ")}`);
    if (await ping(options)) return;
    if (Date.now() > deadline) throw new StartupError(`redis-server did not answer within ${START_TIMEOUT_MS / 1000}s`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function ping(options: RedisOptions): Promise<boolean> {
  const client = new Redis({ ...options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  client.on("error", () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function pingOrExplain(options: RedisOptions, what: string): Promise<void> {
  const client = new Redis({ ...options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5_000 });
  let failure: Error | undefined;
  client.on("error", (error: Error) => (failure ??= error));
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new StartupError(`cannot reach ${what}: ${(failure ?? (error as Error)).message}`, { cause: error });
  } finally {
    client.disconnect();
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** Ends a redis-server a previous (killed) gateway left running for this data dir. */
async function stopOrphan(pidFile: string, logger: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(pidFile, "utf8")).split("\n")[0]);
  } catch {
    return;
  }
  await rm(pidFile, { force: true });
  if (!Number.isSafeInteger(pid) || pid <= 1) return;
  // Only a redis-server: the pid may have been reused by an unrelated process since.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (!cmdline.startsWith("redis-server")) return;
  logger.warn({ pid }, "stopping a redis-server left by a previous run");
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).startsWith("redis-server")) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function cleanupDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}
