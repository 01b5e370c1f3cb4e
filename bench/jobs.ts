/**
 * The fio jobs of bench/README.md: 4k random read/write at queue depth 1 and 32, and 1M
 * sequential read/write at queue depth 8, all through fio's nbd engine over loopback TCP.
 */
import type { BenchConfig, JobName } from "./config";

export interface JobSpec {
  name: JobName;
  rw: "randread" | "randwrite" | "read" | "write";
  blockSize: "4k" | "1m";
  iodepth: number;
  /** What the table shows: IOPS for small blocks, MB/s for large ones. */
  metric: "iops" | "MB/s";
}

export const JOBS: Record<JobName, JobSpec> = {
  "randread-4k-qd1": { name: "randread-4k-qd1", rw: "randread", blockSize: "4k", iodepth: 1, metric: "iops" },
  "randread-4k-qd32": { name: "randread-4k-qd32", rw: "randread", blockSize: "4k", iodepth: 32, metric: "iops" },
  "randwrite-4k-qd1": { name: "randwrite-4k-qd1", rw: "randwrite", blockSize: "4k", iodepth: 1, metric: "iops" },
  "randwrite-4k-qd32": { name: "randwrite-4k-qd32", rw: "randwrite", blockSize: "4k", iodepth: 32, metric: "iops" },
  "read-1m-qd8": { name: "read-1m-qd8", rw: "read", blockSize: "1m", iodepth: 8, metric: "MB/s" },
  "write-1m-qd8": { name: "write-1m-qd8", rw: "write", blockSize: "1m", iodepth: 8, metric: "MB/s" },
};

export function fioArgs(job: JobSpec, uri: string, config: BenchConfig): string[] {
  return [
    `--name=${job.name}`,
    "--ioengine=nbd",
    `--uri=${uri}`,
    `--rw=${job.rw}`,
    `--bs=${job.blockSize}`,
    `--iodepth=${job.iodepth}`,
    `--size=${config.fioSize}`,
    `--runtime=${config.runtime}`,
    "--time_based",
    `--ramp_time=${config.ramp}`,
    "--norandommap", // every run picks offsets the same way on every server; no map bookkeeping
    "--randseed=42",
  ];
}

/** The job's figure from fio's JSON: IOPS, or bytes per second / 1e6. */
export function figure(job: JobSpec, result: { iops: number; bw: number }): number {
  return job.metric === "iops" ? result.iops : (result.bw * 1024) / 1e6; // fio's bw is KiB/s
}
