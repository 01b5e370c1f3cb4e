/**
 * Runs external commands (NBD clients, mkfs, mount, fio) with a hard time limit.
 * Every command gets its own process group so a timeout kills the whole tree it started.
 */
import { spawn } from "node:child_process";
import { waitFor as waitForCondition } from "@stratus/storage/testing";

export interface RunOptions {
  /** Hard limit; the process group is killed with SIGKILL when it passes. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer;
}

export interface RunResult {
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export class CommandError extends Error {
  constructor(readonly result: RunResult) {
    const why = result.timedOut ? "timed out" : `exited with ${result.code ?? result.signal}`;
    super(`${result.command} ${why}\n--- stderr ---\n${tail(result.stderr)}\n--- stdout ---\n${tail(result.stdout)}`);
    this.name = "CommandError";
  }
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Runs `cmd args…` to completion and reports how it ended; never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const command = [cmd, ...args].join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true, // own process group, so the timeout can kill grandchildren too
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, "SIGKILL");
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.stdout.on("data", (b: Buffer) => stdout.push(b));
    child.stderr.on("data", (b: Buffer) => stderr.push(b));
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${command}: ${err.message}`, { cause: err }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        command,
        code,
        signal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
        timedOut,
      });
    });
    child.stdin.on("error", () => {}); // a command that exits without reading stdin is not our error
    child.stdin.end(options.input ?? "");
  });
}

/** Runs `cmd args…` and returns its stdout; throws CommandError (with stderr) unless it exits 0. */
export async function runOk(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await run(cmd, args, options);
  if (result.code !== 0 || result.timedOut) throw new CommandError(result);
  return result.stdout;
}

export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Polls `check` (the shared waitFor) until it returns a value other than undefined. A check that
 * throws is tried again; its last error is the cause of the timeout.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 30_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  let value: T | undefined;
  let lastError: unknown;
  const ready = async (): Promise<boolean> => {
    try {
      value = await check();
    } catch (err) {
      lastError = err;
      return false;
    }
    return value !== undefined;
  };
  await waitForCondition(ready, what, { timeoutMs, intervalMs }).catch((err: unknown) => {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError ?? err });
  });
  return value!;
}

function tail(text: string, max = 4000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}
