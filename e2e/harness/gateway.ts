/**
 * Starts the real `stratus gateway` process for end-to-end tests and benchmarks.
 *
 * The process is the one a user runs (`node apps/nbd-gateway/bin/stratus.mjs gateway`), configured only
 * through its documented environment: a temporary STRATUS_DATA_DIR and free ports. It is ready when it
 * logs the pino line with msg "stratus ready"; its stdout log lines are kept for assertions and for the
 * failure message when something goes wrong.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { seedPgliteDataDir } from "./pglite-template";
import os from "node:os";
import path from "node:path";
import { gatewayProcessEnv } from "../../apps/nbd-gateway/bin/gateway-env.mjs";
import { runOk } from "./exec";
import { freePort } from "./ports";
import { REPO_ROOT, STRATUS_BIN } from "./repo";

export interface StartGatewayOptions {
  /** Reuse a data folder (e.g. a second gateway on the same data); default: a fresh temporary folder. */
  dataDir?: string;
  /** Extra environment for the gateway and the CLI (STRATUS_S3_*, DATABASE_URL, STRATUS_LOG_LEVEL…). */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  stopTimeoutMs?: number;
  /** Run the gateway inside this network namespace (`ip netns exec`); default: the test's own. */
  netns?: string;
  /** STRATUS_NBD_HOST (default 127.0.0.1); off loopback the gateway requires TLS. */
  nbdHost?: string;
  /** Extra arguments after `gateway`, e.g. ["--no-web"]. */
  args?: string[];
  /** Another checkout of Stratus to run the gateway and its CLI from (the bench's baseline); default: this one. */
  repoRoot?: string;
}

export interface GatewayExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the process ignored SIGTERM for stopTimeoutMs and was killed. */
  killed: boolean;
}

/** One pino log line as the gateway wrote it (non-JSON lines are kept as { msg: line }). */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface Gateway {
  readonly nbdPort: number;
  readonly webPort: number;
  readonly dataDir: string;
  /** The local-directory object store ($STRATUS_DATA_DIR/bucket). */
  readonly bucketDir: string;
  /** Process id of the running gateway (changes on restart). */
  readonly pid: number;
  /** nbd://127.0.0.1:PORT/NAME */
  uri(name: string): string;
  /** Runs `stratus ARGS…` against this gateway; returns stdout, throws with stderr on a non-zero exit. */
  cli(args: readonly string[], options?: { input?: string }): Promise<string>;
  /** Every log line of every run of this gateway, oldest first. */
  logs(): readonly LogLine[];
  /** Stops (SIGTERM) and starts again on the same data folder and ports. */
  restart(): Promise<GatewayExit>;
  /** SIGTERM, wait for exit; SIGKILL if it does not exit within stopTimeoutMs. Idempotent. */
  stop(): Promise<GatewayExit>;
  /** SIGKILL at once (a crash: nothing flushed, no shutdown hooks), wait for exit. `restart()` starts it again. */
  kill(): Promise<GatewayExit>;
  /** stop(), then remove the data folder if startGateway created it. */
  dispose(): Promise<void>;
}

const READY_MSG = "stratus ready";

/** One run of the gateway process (a restart makes a new one). */
interface Run {
  proc: ChildProcess;
  exited: Promise<GatewayExit>;
  /** Set when SIGTERM was not enough and the harness sent SIGKILL. */
  killed: boolean;
}
const live = new Set<ChildProcess>();

// A crashed test runner must not leave gateways behind.
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

export async function startGateway(options: StartGatewayOptions = {}): Promise<Gateway> {
  const level = options.env?.STRATUS_LOG_LEVEL;
  if (level !== undefined && !["info", "debug", "trace"].includes(level)) {
    throw new Error(`STRATUS_LOG_LEVEL=${level} hides the "${READY_MSG}" info line the harness waits for`);
  }
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-")));
  if (ownsDataDir && !options.env?.DATABASE_URL) await seedPgliteDataDir(dataDir);
  const readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 20_000;
  const logs: LogLine[] = [];
  const root = options.repoRoot ?? REPO_ROOT;
  const bin = options.repoRoot === undefined ? STRATUS_BIN : path.join(options.repoRoot, path.relative(REPO_ROOT, STRATUS_BIN));

  let nbdPort = 0;
  let webPort = 0;
  let current: Run | undefined;

  // As `npm start` starts it (gateway-env.mjs): settings read at process start.
  const environment = (): NodeJS.ProcessEnv => ({
    ...gatewayProcessEnv(inheritedEnv()),
    STRATUS_LOG_LEVEL: "info",
    ...options.env,
    STRATUS_DATA_DIR: dataDir,
    STRATUS_NBD_HOST: options.nbdHost ?? "127.0.0.1",
    STRATUS_NBD_PORT: String(nbdPort),
    STRATUS_WEB_HOST: "127.0.0.1",
    STRATUS_WEB_PORT: String(webPort),
    STRATUS_URL: `http://127.0.0.1:${webPort}`,
  });

  const launch = async (): Promise<void> => {
    const command = [process.execPath, ...nodeArgs(), bin, "gateway", ...(options.args ?? [])];
    // `ip netns exec` execs the command: the child's pid is the gateway's, signals reach it directly.
    const [file, ...args] = options.netns ? ["ip", "netns", "exec", options.netns, ...command] : command;
    const proc = spawn(file!, args, {
      cwd: root,
      env: environment(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    live.add(proc);
    let resolveExit!: (exit: GatewayExit) => void;
    const run: Run = { proc, killed: false, exited: new Promise((resolve) => (resolveExit = resolve)) };
    proc.once("close", (code, signal) => {
      live.delete(proc);
      resolveExit({ code, signal, killed: run.killed });
    });
    current = run;

    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`gateway not ready within ${readyTimeoutMs} ms\n${describeLogs(logs)}`)), readyTimeoutMs);
      collectLines(proc.stdout!, (line) => {
        const entry = parseLogLine(line);
        logs.push(entry);
        if (entry.msg === READY_MSG) {
          clearTimeout(timer);
          resolve();
        }
      });
      collectLines(proc.stderr!, (line) => logs.push({ msg: line, stream: "stderr" }));
      void run.exited.then((exit) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited before it was ready (${exit.code ?? exit.signal})\n${describeLogs(logs)}`));
      });
    });
    try {
      await ready;
    } catch (err) {
      await stopCurrent();
      throw err;
    }
  };

  const stopCurrent = async (): Promise<GatewayExit> => {
    const run = current;
    if (!run) return { code: 0, signal: null, killed: false };
    const { proc } = run;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => {
        run.killed = true;
        proc.kill("SIGKILL");
      }, stopTimeoutMs);
      const exit = await run.exited;
      clearTimeout(timer);
      return exit;
    }
    return run.exited;
  };

  // Free ports can be taken between probing and binding; retry a first start with new ones.
  for (let attempt = 1; ; attempt++) {
    nbdPort = await freePort();
    webPort = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      const portClash = /EADDRINUSE|in use/i.test(String(err));
      if (!portClash || attempt >= 3) {
        if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  const gateway: Gateway = {
    get nbdPort() {
      return nbdPort;
    },
    get webPort() {
      return webPort;
    },
    dataDir,
    bucketDir: path.join(dataDir, "bucket"),
    get pid() {
      return current?.proc.pid ?? -1;
    },
    uri: (name) => `nbd://127.0.0.1:${nbdPort}/${encodeURIComponent(name)}`,
    cli: (args, { input } = {}) => runOk(process.execPath, [bin, ...args], { cwd: root, env: environment(), timeoutMs: 60_000, input }),
    logs: () => logs,
    restart: async () => {
      const exit = await stopCurrent();
      await launch();
      return exit;
    },
    stop: () => stopCurrent(),
    kill: async () => {
      const run = current;
      if (!run) return { code: 0, signal: null, killed: false };
      if (run.proc.exitCode === null && run.proc.signalCode === null) {
        run.killed = true;
        run.proc.kill("SIGKILL");
      }
      return run.exited;
    },
    dispose: async () => {
      await stopCurrent();
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
  return gateway;
}

/**
 * Extra node flags for the gateway process, for profiling a test or bench run by hand, e.g.
 * `GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` (node refuses --cpu-prof in NODE_OPTIONS).
 */
function nodeArgs(): string[] {
  return (process.env.GATEWAY_NODE_ARGS ?? "").split(/\s+/).filter((arg) => arg !== "");
}

/** The runner's environment without any Stratus configuration, so only what a test passes applies. */
export function inheritedEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith("STRATUS_") || key === "DATABASE_URL") continue;
    env[key] = value;
  }
  return env;
}

export function collectLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.trim() !== "") onLine(line);
    }
  });
  stream.on("end", () => {
    if (pending.trim() !== "") onLine(pending);
  });
}

export function parseLogLine(line: string): LogLine {
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed && typeof parsed === "object") return parsed as LogLine;
  } catch {
    // not JSON: keep the text
  }
  return { msg: line };
}

export function describeLogs(logs: readonly LogLine[], last = 40): string {
  const shown = logs.slice(-last).map((l) => JSON.stringify(l));
  return `--- last ${shown.length} gateway log lines ---\n${shown.join("\n")}`;
}

/** Runs a test body; a failure's message gets the gateway's last log lines, to say what it was doing. */
export async function withGatewayLogs<T>(gateway: Pick<Gateway, "logs">, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof Error) err.message += `\n${describeLogs(gateway.logs())}`;
    throw err;
  }
}
