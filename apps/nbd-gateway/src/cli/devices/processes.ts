/** Running the attach tools (nbd-client, fusermount3) and waiting for a condition, with plain errors. */
import { spawn } from "node:child_process";
import { CliError } from "../api-client";

/** Runs a tool to completion; a non-zero exit becomes a CliError with its output. */
export function runTool(command: string, args: string[], options: { inherit?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: options.inherit ? "inherit" : ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    child.once("error", (error) => reject(new CliError(`cannot run ${command}: ${error.message}`)));
    child.once("close", (code) => (code === 0 ? resolve() : reject(new CliError(`${command} ${args.join(" ")} failed (exit ${code}): ${output.trim()}`))));
  });
}

/** Polls `check` every 100 ms until it returns a value; its errors end the wait. */
export async function waitUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new CliError(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
