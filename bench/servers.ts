/**
 * The servers under test, each serving the same random data on 127.0.0.1:
 * - stratus: the real gateway process (fresh data folder), one volume pre-filled with nbdcopy;
 * - nbdkit-file and qemu-nbd: the peers, started as bench/README.md says, on copies of the image.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { open, readFile } from "node:fs/promises";
import path from "node:path";
import { canConnect, createVolume, freePort, killGroup, runOk, startGateway, waitFor, waitForCommitted, type Gateway } from "../e2e/harness";
import type { ServerName } from "./config";

export interface BenchServer {
  name: ServerName;
  uri: string;
  /** The serving process (for RSS). */
  pid: number;
  /**
   * Resolves once the server is idle after a job. Stratus commits what a job wrote when fio
   * disconnects; that upload must not take the CPU from the next server's job.
   */
  settle?(): Promise<void>;
  stop(): Promise<void>;
}

export async function startStratus(
  workDir: string,
  image: string,
  volumeSize: string,
  dirtyLimit: string,
  {
    env = {},
    dataDirName = "stratus-data",
    name = "stratus",
    repoRoot,
  }: { env?: Record<string, string>; dataDirName?: string; name?: "stratus" | "stratus-base"; repoRoot?: string } = {},
): Promise<BenchServer & { prefillSeconds: number; gateway: Gateway }> {
  const gateway = await startGateway({
    repoRoot,
    dataDir: path.join(workDir, dataDirName),
    env: { STRATUS_LOG_LEVEL: "info", STRATUS_DIRTY_LIMIT: dirtyLimit, ...env, ...stratusOverrides() },
  });
  try {
    await createVolume(gateway, "bench", { size: volumeSize });
    const uri = gateway.uri("bench");
    const started = process.hrtime.bigint();
    await runOk("nbdcopy", ["--flush", image, uri], { timeoutMs: 30 * 60_000 });
    const prefillSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    // The pre-fill's upload (the whole volume) is not part of any job: let it finish first.
    await waitForCommitted(gateway, "bench", { timeoutMs: 30 * 60_000 });
    return {
      name,
      uri,
      get pid() {
        return gateway.pid;
      },
      prefillSeconds,
      gateway,
      settle: () => waitForCommitted(gateway, "bench", { timeoutMs: 30 * 60_000 }),
      stop: async () => {
        await gateway.stop();
      },
    };
  } catch (err) {
    await gateway.stop();
    throw err;
  }
}

export async function startNbdkitFile(workDir: string, file: string): Promise<BenchServer> {
  const port = await freePort();
  // -f: foreground so we own the process; the export name is ignored by the file plugin.
  const child = await startPeer(workDir, "nbdkit", ["-f", "-i", "127.0.0.1", "-p", String(port), "file", file], port);
  return { name: "nbdkit-file", uri: `nbd://127.0.0.1:${port}/`, pid: child.pid!, stop: () => stopPeer(child) };
}

/** nbdkit's file plugin with TLS required and a PSK file (`identity:hexkey` lines); its log is nbdkit-tls.log. */
export async function startNbdkitFileTls(workDir: string, file: string, pskFile: string, identity: string) {
  const port = await freePort();
  const args = ["-f", "-i", "127.0.0.1", "-p", String(port), "--tls=require", `--tls-psk=${pskFile}`, "file", file];
  const child = await startPeer(workDir, "nbdkit", args, port, "nbdkit-tls");
  return { uri: `nbds://${identity}@127.0.0.1:${port}/?tls-psk-file=${pskFile}`, pid: child.pid!, stop: () => stopPeer(child) };
}

export async function startQemuNbd(workDir: string, file: string): Promise<BenchServer> {
  const port = await freePort();
  const args = ["-f", "raw", "-t", "-x", "bench", "-e", "8", "--cache=writeback", "-b", "127.0.0.1", "-p", String(port), file];
  const child = await startPeer(workDir, "qemu-nbd", args, port);
  return { name: "qemu-nbd", uri: `nbd://127.0.0.1:${port}/bench`, pid: child.pid!, stop: () => stopPeer(child) };
}

async function startPeer(workDir: string, command: string, args: string[], port: number, logName = command): Promise<ChildProcess> {
  const log = await open(path.join(workDir, `${logName}.log`), "w");
  // detached = its own session (setsid), so it lives exactly as long as we say.
  const child = spawn(command, args, { detached: true, stdio: ["ignore", log.fd, log.fd] });
  await log.close();
  let exited = false;
  child.once("exit", () => (exited = true));
  try {
    await waitFor(`${command} to listen on ${port}`, async () => {
      if (exited) throw new Error(`${command} exited; see ${workDir}/${logName}.log`);
      return (await canConnect(port)) ? true : undefined;
    });
  } catch (err) {
    await stopPeer(child);
    throw err;
  }
  return child;
}

async function stopPeer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  killGroup(child.pid, "SIGTERM");
  const timer = setTimeout(() => killGroup(child.pid, "SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** STRATUS_* settings from the bench's environment, for the gateways (the harness passes none on by itself). */
export function stratusOverrides(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] => entry[0].startsWith("STRATUS_") && entry[1] !== undefined),
  );
}

/** Resident set size of a process in bytes (Linux /proc), or undefined if it is gone. */
export async function residentBytes(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : undefined;
}
