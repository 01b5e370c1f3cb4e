/**
 * Long-running child processes for tests (`next start`, `stratus gateway`): output kept for failure
 * messages, readiness by a condition, stopped with SIGTERM (SIGKILL after a while) and on runner exit.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { waitFor as waitForCondition } from "@stratus/storage/testing";

export interface TestProcess {
  proc: ChildProcess;
  output(): string;
  waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

export function startProcess(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): TestProcess {
  const proc = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] });
  live.add(proc);
  let output = "";
  proc.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  proc.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const exited = new Promise<void>((resolve) => proc.once("close", () => (live.delete(proc), resolve())));
  return {
    proc,
    output: () => output,
    waitFor: async (condition, what, timeoutMs = 90_000) => {
      const ready = async (): Promise<boolean> => {
        if (await condition()) return true;
        if (proc.exitCode !== null) throw new Error(`${command} exited (${proc.exitCode}) before ${what}:\n${output.slice(-4000)}`);
        return false;
      };
      await waitForCondition(ready, what, { timeoutMs, intervalMs: 100 }).catch((err: unknown) => {
        throw proc.exitCode === null ? new Error(`timed out waiting for ${what}:\n${output.slice(-4000)}`, { cause: err }) : err;
      });
    },
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
