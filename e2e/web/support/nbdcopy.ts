/**
 * nbdcopy reading its image from standard input: the client stays attached for as long as the test
 * keeps the pipe open (so a page can be checked while a real client is connected), and `finish()`
 * closes the pipe, lets nbdcopy flush and returns its exit code (stderr goes to the test's output
 * when it fails).
 */
import { spawn } from "node:child_process";

export interface RunningCopy {
  write(data: Buffer): Promise<void>;
  finish(): Promise<number | null>;
  kill(): void;
}

/**
 * `target` is an NBD URI, or with asCommand a whole shell command line that reads from "-". `prefix`
 * runs it under another command (e.g. `ip netns exec NS`), `env` replaces the environment.
 */
export function startNbdcopy(target: string, { asCommand = false, prefix = [] as string[], env = process.env } = {}): RunningCopy {
  const argv = asCommand ? [...prefix, "bash", "-c", target] : [...prefix, "nbdcopy", "--flush", "-", target];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "ignore", "pipe"], env });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
  return {
    write: (data) => new Promise((resolve, reject) => child.stdin.write(data, (error) => (error ? reject(error) : resolve()))),
    finish: async () => {
      child.stdin.end();
      const code = await exited;
      if (code !== 0) console.error(`nbdcopy exited with ${code}: ${stderr}`);
      return code;
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
