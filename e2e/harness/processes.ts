/**
 * Process trees as a user's shell sees them: `npm start` run in its own process group (as a terminal
 * runs a foreground job), signals sent to the group or to one process, and checks read from /proc.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { freePort } from "./ports";
import { REPO_ROOT } from "./repo";
import { collectLines, describeLogs, inheritedEnv, parseLogLine, type LogLine } from "./gateway";

/** Fields of /proc/PID/stat after the command name; undefined when the process is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** Running or sleeping: neither gone nor a zombie waiting to be reaped. */
export function isRunning(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== "Z" && state !== "X";
}

export function isZombie(pid: number): boolean {
  return statFields(pid)?.[0] === "Z";
}

/** Live (non-zombie) members of a process group. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const fields = statFields(pid);
    if (fields && fields[2] === String(pgid) && fields[0] !== "Z" && fields[0] !== "X") members.push(pid);
  }
  return members;
}

export interface NpmStart {
  /** npm's pid, which also leads the process group. */
  readonly pid: number;
  readonly nbdPort: number;
  readonly webPort: number;
  /** The environment it runs with (for the CLI). */
  readonly env: NodeJS.ProcessEnv;
  logs(): readonly LogLine[];
  /** Resolves when the gateway logged "stratus ready". */
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The private redis-server's pid, from the data dir's pid file (once ready). */
  redisPid(): number;
}

/** `npm start -- ARGS` in the repository, as a user runs it, in a process group of its own. */
export async function npmStart(dataDir: string, args: readonly string[] = [], env: Record<string, string> = {}): Promise<NpmStart> {
  const nbdPort = await freePort();
  const webPort = await freePort();
  const environment: NodeJS.ProcessEnv = {
    ...inheritedEnv(),
    STRATUS_LOG_LEVEL: "info",
    ...env,
    STRATUS_DATA_DIR: dataDir,
    STRATUS_NBD_PORT: String(nbdPort),
    STRATUS_WEB_PORT: String(webPort),
    STRATUS_URL: `http://127.0.0.1:${webPort}`,
  };
  const npmArgs = args.length > 0 ? ["start", "--", ...args] : ["start"];
  const proc: ChildProcess = spawn("npm", npmArgs, { cwd: REPO_ROOT, env: environment, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const logs: LogLine[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("close", (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<void>((resolve, reject) => {
    collectLines(proc.stdout!, (line) => {
      const entry = parseLogLine(line);
      logs.push(entry);
      if (entry.msg === "stratus ready") resolve();
    });
    collectLines(proc.stderr!, (line) => logs.push({ msg: line, stream: "stderr" }));
    void exited.then((exit) => reject(new Error(`npm start exited before it was ready (${exit.code ?? exit.signal})\n${describeLogs(logs)}`)));
  });
  ready.catch(() => undefined);
  return {
    pid: proc.pid!,
    nbdPort,
    webPort,
    env: environment,
    logs: () => logs,
    ready,
    exited,
    redisPid: () => Number(readFileSync(`${dataDir}/redis.pid`, "utf8").split("\n")[0]),
  };
}
