/**
 * Turns the per-round fio figures into medians, ratios against each peer, and a plain-text table.
 */
import { WRITE_JOB_NAMES, type JobName, type ServerName } from "./config";
import { JOBS } from "./jobs";

export interface Sample {
  round: number;
  job: JobName;
  server: ServerName;
  /** IOPS for 4k jobs, MB/s for 1M jobs. */
  value: number;
  iops: number;
  bytesPerSecond: number;
  meanLatencyUs: number;
}

export interface Summary {
  job: JobName;
  metric: string;
  /** Median per server. */
  medians: Partial<Record<ServerName, number>>;
  /** Lowest and highest round per server. */
  ranges: Partial<Record<ServerName, [number, number]>>;
  /** stratus median / peer median. */
  ratios: Partial<Record<ServerName, number>>;
  /** The goal for this job (bench/README.md), as a ratio to nbdkit file, if there is one. */
  goal?: number;
}

/**
 * Warm goals against nbdkit file, with the gateway's cache in the path (bench/README.md). Random writes
 * of every size and depth, and FLUSH-heavy jobs: 0.9x (issue 24); 4k at QD32: 1.0x.
 */
const GOALS: Partial<Record<JobName, number>> = {
  "randread-4k-qd32": 1.0,
  "randread-4k-qd1": 0.7,
  "read-1m-qd8": 0.8,
  "write-1m-qd8": 0.8,
  ...Object.fromEntries(WRITE_JOB_NAMES.map((job) => [job, 0.9])),
  "randwrite-4k-qd32": 1.0,
};

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(samples: readonly Sample[], jobs: readonly JobName[], servers: readonly ServerName[]): Summary[] {
  return jobs.map((job) => {
    const summary: Summary = { job, metric: JOBS[job].metric, medians: {}, ranges: {}, ratios: {}, goal: GOALS[job] };
    for (const server of servers) {
      const values = samples.filter((s) => s.job === job && s.server === server).map((s) => s.value);
      if (values.length === 0) continue;
      summary.medians[server] = median(values);
      summary.ranges[server] = [Math.min(...values), Math.max(...values)];
    }
    const ours = summary.medians.stratus;
    for (const server of servers) {
      const theirs = summary.medians[server];
      if (server !== "stratus" && ours !== undefined && theirs) summary.ratios[server] = ours / theirs;
    }
    return summary;
  });
}

export function formatTable(summaries: readonly Summary[], servers: readonly ServerName[]): string {
  const peers = servers.includes("stratus") ? servers.filter((s) => s !== "stratus") : []; // no ratios without us
  const header = ["job", "unit", ...servers, ...peers.map((p) => `stratus/${p}`), "goal vs nbdkit-file"];
  const rows = summaries.map((s) => [
    s.job,
    s.metric,
    ...servers.map((server) => formatFigure(s.medians[server], s.metric)),
    ...peers.map((peer) => (s.ratios[peer] === undefined ? "-" : `${s.ratios[peer]!.toFixed(2)}x`)),
    goalCell(s),
  ]);
  return markdownTable(header, rows);
}

/** A plain-text table in Markdown form, columns padded to their widest cell. */
export function markdownTable(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function goalCell(s: Summary): string {
  if (s.goal === undefined) return "-";
  const ratio = s.ratios["nbdkit-file"];
  if (ratio === undefined) return `>= ${s.goal}x`;
  return `>= ${s.goal}x ${ratio >= s.goal ? "met" : "NOT met"}`;
}

function formatFigure(value: number | undefined, metric: string): string {
  if (value === undefined) return "-";
  return metric === "iops" && value >= 1000 ? `${(value / 1000).toFixed(1)}k` : value.toFixed(0);
}

export function formatBytes(bytes: number | undefined): string {
  return bytes === undefined ? "-" : `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}
