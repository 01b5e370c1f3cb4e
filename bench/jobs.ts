/**
 * The fio jobs of bench/README.md: 4k random read/write at queue depth 1 and 32, and 1M
 * sequential read/write at queue depth 8; the writes section's random writes of 4k to 256k at queue
 * depth 1, 8 and 32 and FLUSH-heavy jobs; all through fio's nbd engine over loopback TCP.
 */
import type { BenchConfig, JobName } from "./config";

export interface JobSpec {
  name: JobName;
  rw: "randread" | "randwrite" | "read" | "write";
  blockSize: "4k" | "16k" | "64k" | "256k" | "1m";
  iodepth: number;
  /** What the table shows: IOPS for small blocks, MB/s for large ones. */
  metric: "iops" | "MB/s";
  /** A FLUSH after every write (fio --fsync=1). */
  fsync?: boolean;
  /** Connections (fio jobs, each with its own NBD connection), reported together. */
  connections?: number;
}

const randwrite = (blockSize: JobSpec["blockSize"], iodepth: number): JobSpec => ({
  name: `randwrite-${blockSize}-qd${iodepth}` as JobName,
  rw: "randwrite",
  blockSize,
  iodepth,
  metric: "iops",
});

const fsyncJob = (blockSize: JobSpec["blockSize"], connections: number): JobSpec => ({
  name: `fsync-${blockSize}-qd1${connections > 1 ? `-${connections}conn` : ""}` as JobName,
  rw: "randwrite",
  blockSize,
  iodepth: 1,
  metric: "iops",
  fsync: true,
  connections,
});

export const JOBS: Record<JobName, JobSpec> = {
  "randread-4k-qd1": { name: "randread-4k-qd1", rw: "randread", blockSize: "4k", iodepth: 1, metric: "iops" },
  "randread-4k-qd32": { name: "randread-4k-qd32", rw: "randread", blockSize: "4k", iodepth: 32, metric: "iops" },
  "randwrite-4k-qd1": { name: "randwrite-4k-qd1", rw: "randwrite", blockSize: "4k", iodepth: 1, metric: "iops" },
  "randwrite-4k-qd32": { name: "randwrite-4k-qd32", rw: "randwrite", blockSize: "4k", iodepth: 32, metric: "iops" },
  "read-1m-qd8": { name: "read-1m-qd8", rw: "read", blockSize: "1m", iodepth: 8, metric: "MB/s" },
  "write-1m-qd8": { name: "write-1m-qd8", rw: "write", blockSize: "1m", iodepth: 8, metric: "MB/s" },
  "randwrite-4k-qd8": randwrite("4k", 8),
  "randwrite-16k-qd1": randwrite("16k", 1),
  "randwrite-16k-qd8": randwrite("16k", 8),
  "randwrite-16k-qd32": randwrite("16k", 32),
  "randwrite-64k-qd1": randwrite("64k", 1),
  "randwrite-64k-qd8": randwrite("64k", 8),
  "randwrite-64k-qd32": randwrite("64k", 32),
  "randwrite-256k-qd1": randwrite("256k", 1),
  "randwrite-256k-qd8": randwrite("256k", 8),
  "randwrite-256k-qd32": randwrite("256k", 32),
  "fsync-4k-qd1": fsyncJob("4k", 1),
  "fsync-16k-qd1": fsyncJob("16k", 1),
  "fsync-4k-qd1-4conn": fsyncJob("4k", 4),
  "fsync-16k-qd1-4conn": fsyncJob("16k", 4),
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
    ...(job.fsync ? ["--fsync=1"] : []),
    ...(job.connections !== undefined && job.connections > 1 ? [`--numjobs=${job.connections}`, "--group_reporting"] : []),
  ];
}

/** The job's figure from fio's JSON: IOPS, or bytes per second / 1e6. */
export function figure(job: JobSpec, result: { iops: number; bw: number }): number {
  return job.metric === "iops" ? result.iops : (result.bw * 1024) / 1e6; // fio's bw is KiB/s
}
