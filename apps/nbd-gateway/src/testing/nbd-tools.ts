/**
 * Runs the real NBD clients (nbdinfo, nbdsh, qemu-io) from tests, bounded in time.
 * nbdsh is `python3 -m nbd`: the python3-libnbd module lives in Debian's /usr/bin/python3, so we
 * put /usr/bin first on PATH (a pyenv python3 earlier on PATH has no `nbd` module).
 */
import { execFile } from "node:child_process";
import { waitFor as waitForCondition } from "@stratus/storage/testing";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ""}` } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Runs `run` and fails with the client's stderr when it exits non-zero. */
export async function runOk(command: string, args: string[], timeoutMs?: number): Promise<string> {
  const result = await run(command, args, timeoutMs);
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.code}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

/**
 * Runs a Python snippet in nbdsh with `h` connected to `uri` (structured replies and
 * base:allocation requested) and returns what the snippet printed as JSON on its last line.
 */
export async function nbdsh<T>(uri: string, script: string, timeoutMs?: number): Promise<T> {
  const prelude = [
    "import json",
    "h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)",
    `h.connect_uri(${JSON.stringify(uri)})`,
    "def errno_of(f):",
    "    try:",
    "        f()",
    "        return 0",
    "    except nbd.Error as e:",
    "        return e.errno",
  ].join("\n");
  const out = await runOk("nbdsh", ["-c", `${prelude}\n${script}\nh.shutdown()`], timeoutMs);
  const lines = out.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]!) as T;
}

/** The one seeded PRNG, so fuzz and patterns are reproducible from the seed. */
export { seededRandom } from "@stratus/storage/testing";

/** The shared waitFor, checking every few milliseconds: these conditions wait on real clients. */
export function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  return waitForCondition(condition, what, { timeoutMs, intervalMs: 5 });
}
