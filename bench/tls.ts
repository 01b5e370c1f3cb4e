/**
 * The TLS section: what TLS-PSK costs Stratus against what it costs nbdkit's file plugin, in one run.
 * Four servers (Stratus plain and TLS on one gateway with STRATUS_NBD_TLS=optional; nbdkit plain and
 * nbdkit --tls=require --tls-psk), one client for all: bench/nbd-load.c on libnbd, because fio's nbd
 * engine cannot read a PSK file.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { makeSparseImage, run, runOk, type CleanupStack } from "../e2e/harness";
import { sizeBytes, type BenchConfig } from "./config";
import { markdownTable, median } from "./report";
import { startNbdkitFile, startNbdkitFileTls, startStratus } from "./servers";

export const TLS_SERVERS = ["stratus", "stratus-tls", "nbdkit-file", "nbdkit-file-tls"] as const;
export type TlsServerName = (typeof TLS_SERVERS)[number];

interface LoadJob {
  name: string;
  mode: "randread" | "read";
  blockSize: number;
  iodepth: number;
  metric: "iops" | "MB/s";
  /** Goal for stratus-tls / nbdkit-file-tls, where the issue sets one. */
  goal?: number;
}

const LOAD_JOBS: LoadJob[] = [
  { name: "randread-4k-qd1", mode: "randread", blockSize: 4096, iodepth: 1, metric: "iops" },
  { name: "randread-4k-qd32", mode: "randread", blockSize: 4096, iodepth: 32, metric: "iops", goal: 0.9 },
  { name: "read-1m-qd8", mode: "read", blockSize: 2 ** 20, iodepth: 8, metric: "MB/s", goal: 0.9 },
];

interface LoadResult {
  ops: number;
  bytes: number;
  seconds: number;
  meanLatencyUs: number;
}

export interface TlsSample {
  round: number;
  job: string;
  server: TlsServerName;
  value: number;
  meanLatencyUs: number;
}

export interface TlsSummary {
  job: string;
  metric: string;
  medians: Partial<Record<TlsServerName, number>>;
  /** stratus-tls / nbdkit-file-tls. */
  tlsRatio?: number;
  /** TLS figure / plain figure, per server: how much of its speed each keeps under TLS. */
  stratusKeeps?: number;
  nbdkitKeeps?: number;
  goal?: number;
}

export interface TlsResults {
  samples: TlsSample[];
  summaries: TlsSummary[];
}

type Say = (text: string) => void;

export async function runTlsBench(config: BenchConfig, work: string, cleanup: CleanupStack, say: Say): Promise<TlsResults> {
  const driver = await buildDriver(work);
  const region = sizeBytes(config.fioSize);
  const image = await makeSparseImage(path.join(work, "tls.img"), { size: region, seed: 3, dataFraction: 1 });

  say("starting stratus (STRATUS_NBD_TLS=optional: plain and TLS-PSK on one gateway)");
  const stratus = await startStratus(work, image.path, config.fioSize, config.dirtyLimit, {
    env: { STRATUS_NBD_TLS: "optional" },
    dataDirName: "stratus-tls-data",
  });
  cleanup.push("stratus gateway (tls)", () => stratus.stop());
  const deviceDir = path.join(work, "bench-device");
  const created = JSON.parse(await stratus.gateway.cli(["device", "create", "bench", "--out", deviceDir, "--json"])) as {
    credential: { id: string };
  };
  const stratusTlsUri = `nbds://${created.credential.id}@127.0.0.1:${stratus.gateway.nbdPort}/bench?tls-psk-file=${deviceDir}/keys.psk`;

  say("starting nbdkit file, plain and --tls=require --tls-psk");
  const pskFile = path.join(work, "nbdkit.psk");
  await writeFile(pskFile, `bench:${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
  const nbdkit = await startNbdkitFile(work, image.path);
  cleanup.push("nbdkit-file", () => nbdkit.stop());
  const nbdkitTls = await startNbdkitFileTls(work, image.path, pskFile, "bench");
  cleanup.push("nbdkit-file-tls", () => nbdkitTls.stop());

  const uris: Record<TlsServerName, string> = {
    stratus: stratus.uri,
    "stratus-tls": stratusTlsUri,
    "nbdkit-file": nbdkit.uri,
    "nbdkit-file-tls": nbdkitTls.uri,
  };
  const samples: TlsSample[] = [];
  for (let round = 1; round <= config.rounds; round++) {
    for (const job of LOAD_JOBS) {
      // Rotate who goes first each round, as the warm section does.
      const order = TLS_SERVERS.map((_, i) => TLS_SERVERS[(i + round - 1) % TLS_SERVERS.length]!);
      for (const server of order) {
        const args = [uris[server], job.mode, String(job.blockSize), String(job.iodepth), String(config.ramp), String(config.runtime), String(region)];
        const result = JSON.parse(await runOk(driver, args, { timeoutMs: (config.runtime + config.ramp + 120) * 1000 })) as LoadResult;
        const value = job.metric === "iops" ? result.ops / result.seconds : result.bytes / result.seconds / 1e6;
        samples.push({ round, job: job.name, server, value, meanLatencyUs: result.meanLatencyUs });
        say(`  round ${round} ${job.name.padEnd(18)} ${server.padEnd(16)} ${value.toFixed(0).padStart(8)} ${job.metric}`);
      }
    }
  }
  await stratus.stop();
  await nbdkit.stop();
  await nbdkitTls.stop();
  return { samples, summaries: summarizeTls(samples) };
}

/** Compiles bench/nbd-load.c against libnbd (bench/run.sh installs gcc and libnbd-dev when missing). */
async function buildDriver(work: string): Promise<string> {
  const output = path.join(work, "nbd-load");
  const source = path.join(import.meta.dirname, "nbd-load.c");
  const result = await run("cc", ["-O2", "-Wall", "-o", output, source, "-lnbd"], { timeoutMs: 120_000 });
  if (result.code !== 0) throw new Error(`cannot build bench/nbd-load.c (needs gcc and libnbd-dev):\n${result.stderr}`);
  return output;
}

export function summarizeTls(samples: readonly TlsSample[]): TlsSummary[] {
  return LOAD_JOBS.map((job) => {
    const medians: TlsSummary["medians"] = {};
    for (const server of TLS_SERVERS) {
      const values = samples.filter((s) => s.job === job.name && s.server === server).map((s) => s.value);
      if (values.length > 0) medians[server] = median(values);
    }
    const ratio = (a?: number, b?: number) => (a !== undefined && b ? a / b : undefined);
    return {
      job: job.name,
      metric: job.metric,
      medians,
      tlsRatio: ratio(medians["stratus-tls"], medians["nbdkit-file-tls"]),
      stratusKeeps: ratio(medians["stratus-tls"], medians.stratus),
      nbdkitKeeps: ratio(medians["nbdkit-file-tls"], medians["nbdkit-file"]),
      goal: job.goal,
    };
  });
}

export function formatTlsTable(summaries: readonly TlsSummary[]): string {
  const header = ["job", "unit", ...TLS_SERVERS, "stratus-tls/nbdkit-tls", "goal", "TLS keeps: stratus", "nbdkit"];
  const x = (value?: number) => (value === undefined ? "-" : `${value.toFixed(2)}x`);
  const rows = summaries.map((s) => [
    s.job,
    s.metric,
    ...TLS_SERVERS.map((server) => {
      const value = s.medians[server];
      if (value === undefined) return "-";
      return s.metric === "iops" && value >= 1000 ? `${(value / 1000).toFixed(1)}k` : value.toFixed(0);
    }),
    x(s.tlsRatio),
    s.goal === undefined ? "-" : `>= ${s.goal}x ${s.tlsRatio !== undefined && s.tlsRatio >= s.goal ? "met" : "NOT met"}`,
    x(s.stratusKeeps),
    x(s.nbdkitKeeps),
  ]);
  return markdownTable(header, rows);
}
