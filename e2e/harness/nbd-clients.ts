/**
 * Thin wrappers over the real NBD clients (libnbd's nbdinfo/nbdcopy, qemu-img, qemu-io, fio) that
 * parse their machine-readable output and fail with the client's own words.
 */
import path from "node:path";
import { readFile } from "node:fs/promises";
import { runOk } from "./exec";

export interface NbdExportInfo {
  "export-name": string;
  "export-size": number;
  can_multi_conn?: boolean;
  can_trim?: boolean;
  can_zero?: boolean;
  can_flush?: boolean;
  is_read_only?: boolean;
  contexts?: string[];
}

/** `nbdinfo --list --json nbd://HOST:PORT`: every export the server lists. */
export async function listExports(serverUri: string): Promise<NbdExportInfo[]> {
  const out = await runOk("nbdinfo", ["--list", "--json", serverUri], { timeoutMs: 30_000 });
  return (JSON.parse(out) as { exports: NbdExportInfo[] }).exports;
}

export interface MapExtent {
  offset: number;
  length: number;
  /** base:allocation flags: bit 0 hole, bit 1 zero (3 = "hole,zero"). */
  type: number;
  description: string;
}

/** `nbdinfo --map --json URI`: the export's base:allocation map. */
export async function mapExport(uri: string): Promise<MapExtent[]> {
  const out = await runOk("nbdinfo", ["--map", "--json", uri], { timeoutMs: 60_000 });
  return JSON.parse(out) as MapExtent[];
}

/** Runs qemu-io commands against an NBD URI; throws if any command failed or a -P check did not match. */
export async function qemuIo(uri: string, commands: readonly string[]): Promise<string> {
  const args = ["-f", "raw", uri];
  for (const command of commands) args.push("-c", command);
  const out = await runOk("qemu-io", args, { timeoutMs: 120_000 });
  // qemu-io reports some failures only in its output, so look there as well as at the exit code.
  const bad = out.split("\n").filter((line) => /Pattern verification failed|failed|error/i.test(line));
  if (bad.length > 0) throw new Error(`qemu-io reported failures:\n${bad.slice(0, 20).join("\n")}`);
  return out;
}

/** fio's JSON report (the fields the tests and the benchmark use). */
export interface FioJob {
  jobname: string;
  error: number;
  read: FioDirection;
  write: FioDirection;
}
export interface FioDirection {
  io_bytes: number;
  iops: number;
  /** KiB/s */
  bw: number;
  clat_ns?: { mean: number; percentile?: Record<string, number> };
}

/** Runs fio with `args` plus JSON output to `reportFile`; returns the parsed jobs. */
export async function runFio(args: readonly string[], reportFile: string, timeoutMs: number): Promise<FioJob[]> {
  // fio writes verify state files (*-verify.state) into its working directory: keep them beside the report.
  await runOk("fio", [...args, "--output-format=json", `--output=${reportFile}`], { timeoutMs, cwd: path.dirname(reportFile) });
  const report = JSON.parse(await readFile(reportFile, "utf8")) as { jobs: FioJob[] };
  return report.jobs;
}
