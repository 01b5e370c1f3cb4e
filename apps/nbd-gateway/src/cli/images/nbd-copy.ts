/**
 * One nbdcopy run between a local image and a volume's NBD export, with its machine-readable progress
 * (--progress=3: "N/100" lines) reported to a callback, and an AbortSignal that ends it (SIGTERM).
 *
 * Only useful data moves: nbdcopy asks the source for its extents (holes are never read), skips runs of
 * zeros inside data (--sparse, 4 KiB), and with --destination-is-zero never writes a zero to a target
 * that is known to read as zeros (a new volume, a new sparse file or qcow2). A non-raw image is served
 * to nbdcopy by `qemu-nbd --read-only` (or written through `qemu-nbd` for a qcow2 export).
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { CliError } from "../api-client";

export type CopyEnd =
  { kind: "file"; path: string } | { kind: "qemu-nbd"; qemuNbd: string; format: string; path: string; readOnly: boolean } | { kind: "nbd"; uri: string };

function endWords(end: CopyEnd): string[] {
  if (end.kind === "file") return [end.path];
  if (end.kind === "nbd") return [end.uri];
  return ["[", end.qemuNbd, ...(end.readOnly ? ["--read-only"] : []), "--format", end.format, end.path, "]"];
}

export interface CopyOptions {
  nbdcopy: string;
  source: CopyEnd;
  destination: CopyEnd;
  /** 0–100, each time nbdcopy reports a new value. */
  onProgress: (percent: number) => void;
  /** nbdcopy's pid once it runs (it leads its own process group). */
  onStart?: (pid: number) => void;
  signal: AbortSignal;
}

/** Resolves when nbdcopy exits 0; rejects with its stderr, or with the abort reason once it has exited. */
export function nbdCopy(options: CopyOptions): Promise<void> {
  const args = ["--progress=3", "--destination-is-zero", "--flush", "--", ...endWords(options.source), ...endWords(options.destination)];
  return new Promise((resolve, reject) => {
    if (options.signal.aborted) return reject(options.signal.reason as Error);
    // Its own process group: a terminal's Ctrl-C reaches this process, which decides when nbdcopy stops.
    const child = spawn(options.nbdcopy, args, { stdio: ["ignore", "ignore", "pipe", "pipe"], detached: true });
    if (child.pid) options.onStart?.(child.pid);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    let pending = "";
    (child.stdio[3] as NodeJS.ReadableStream).on("data", (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const match = /^(\d+)\/100$/.exec(line.trim());
        if (match) options.onProgress(Number(match[1]));
      }
    });
    const onAbort = () => {
      if (child.pid) {
        try {
          process.kill(-child.pid, "SIGTERM"); // nbdcopy and the qemu-nbd it started
        } catch {
          // already gone
        }
      }
    };
    options.signal.addEventListener("abort", onAbort, { once: true });
    child.once("error", (error) => reject(new CliError(`cannot run ${path.basename(options.nbdcopy)}: ${error.message}`)));
    child.once("close", (code, signal) => {
      options.signal.removeEventListener("abort", onAbort);
      if (options.signal.aborted) return reject(options.signal.reason as Error);
      if (code === 0) return resolve();
      reject(new CliError(`nbdcopy failed (${code ?? signal}): ${stderr.trim() || "no message"}`));
    });
  });
}
