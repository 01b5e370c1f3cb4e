/**
 * Benchmark settings, read once from BENCH_* variables (bench/README.md lists them).
 * A quick look: BENCH_RUNTIME=5 BENCH_ROUNDS=1 npm run bench
 */
import * as z from "zod";

/** stratus-base: the gateway of another checkout (BENCH_BASELINE), to compare two versions in one run. */
export const SERVER_NAMES = ["stratus", "nbdkit-file", "qemu-nbd", "stratus-base"] as const;
export type ServerName = (typeof SERVER_NAMES)[number];

/** The warm section's jobs (local, against nbdkit file and qemu-nbd). */
export const JOB_NAMES = ["randread-4k-qd1", "randread-4k-qd32", "randwrite-4k-qd1", "randwrite-4k-qd32", "read-1m-qd8", "write-1m-qd8"] as const;

/**
 * The writes section's jobs (issue 24, goals 1 and 2): random writes of every size from 4k to 256k at
 * queue depth 1, 8 and 32, and FLUSH-heavy work (fio --fsync=1: a FLUSH after every write, as a
 * database's journal does) on one connection and on four.
 */
export const WRITE_JOB_NAMES = [
  "randwrite-4k-qd1",
  "randwrite-4k-qd8",
  "randwrite-4k-qd32",
  "randwrite-16k-qd1",
  "randwrite-16k-qd8",
  "randwrite-16k-qd32",
  "randwrite-64k-qd1",
  "randwrite-64k-qd8",
  "randwrite-64k-qd32",
  "randwrite-256k-qd1",
  "randwrite-256k-qd8",
  "randwrite-256k-qd32",
  "fsync-4k-qd1",
  "fsync-16k-qd1",
  "fsync-4k-qd1-4conn",
  "fsync-16k-qd1-4conn",
] as const;

export type JobName = (typeof JOB_NAMES)[number] | (typeof WRITE_JOB_NAMES)[number];

export const SECTION_NAMES = ["local", "writes", "tls", "cloud", "wan", "startup"] as const;
export type SectionName = (typeof SECTION_NAMES)[number];

export interface BenchConfig {
  /** Seconds each fio run measures (after the ramp). */
  runtime: number;
  /** Seconds each fio run warms up before measuring. */
  ramp: number;
  /** A B C A B C …: how many times every job runs on every server. */
  rounds: number;
  /** Size of the volume / image file each server serves (pre-filled with random data). */
  volumeSize: string;
  /** The region fio works in (fio --size). */
  fioSize: string;
  jobs: JobName[];
  /** The writes section's jobs (stratus vs nbdkit file only). */
  writeJobs: JobName[];
  servers: ServerName[];
  /** A checkout of Stratus (with node_modules and a dashboard build) whose gateway runs as stratus-base. */
  baseline?: string;
  /** Keep the work folder (images, logs, fio reports) instead of removing it. */
  keep: boolean;
  /** Where the work folder goes (default: the OS temp folder). */
  workRoot?: string;
  /**
   * local: warm fio jobs vs nbdkit file / qemu-nbd; writes: random writes 4k-256k at QD 1/8/32 and
   * FLUSH-heavy jobs vs nbdkit file; tls: warm reads plain and over TLS-PSK vs nbdkit
   * file with --tls=require; cloud: vs s3backer on the same S3 server; wan: the same behind a proxy
   * shaped like a WAN (25 ms, 1 Gbit/s); startup: the CLI's wall time (hyperfine) and the gateway's
   * resident memory.
   */
  sections: SectionName[];
  /** Size of the volume the cloud section writes, reads cold and reads warm. */
  cloudSize: string;
  /**
   * Durability of the cloud section's volume. cloud (default): the write is timed until the
   * copy's FLUSH returns, which is when the bucket holds it; local: until the commit that follows
   * the FLUSH (which synced the local disk) landed.
   */
  cloudDurability: "cloud" | "local";
  /**
   * s3backer's features in the cloud section: compress-encrypt (default, as Stratus always does both)
   * or plain (neither, as the bench ran it until 2026-12-07: for figures comparable to those).
   */
  cloudS3backer: "compress-encrypt" | "plain";
  /** Size of the volume the wan section writes and reads cold. */
  wanSize: string;
  /** STRATUS_DIRTY_LIMIT of the warm section's gateway: above the fio region, so "warm" writes stay in the cache. */
  dirtyLimit: string;
}

const list = <T extends string>(all: readonly T[]) =>
  z
    .string()
    .transform((text) =>
      text
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(all as unknown as [T, ...T[]])).min(1));

const schema = z.object({
  BENCH_RUNTIME: z.coerce.number().int().min(1).default(20),
  BENCH_RAMP: z.coerce.number().int().min(0).default(2),
  BENCH_ROUNDS: z.coerce.number().int().min(1).default(3),
  BENCH_VOLUME_SIZE: z
    .string()
    .regex(/^\d+[MG]$/, "a size like 2G or 512M")
    .default("2G"),
  BENCH_FIO_SIZE: z
    .string()
    .regex(/^\d+[MG]$/, "a size like 1G or 256M")
    .default("1G"),
  BENCH_JOBS: list(JOB_NAMES).default([...JOB_NAMES]),
  BENCH_WRITE_JOBS: list(WRITE_JOB_NAMES).default([...WRITE_JOB_NAMES]),
  BENCH_SERVERS: list(SERVER_NAMES).optional(),
  BENCH_BASELINE: z.string().min(1).optional(),
  BENCH_KEEP: z.enum(["0", "1"]).default("0"),
  BENCH_DIR: z.string().min(1).optional(),
  BENCH_SECTIONS: list(SECTION_NAMES).default([...SECTION_NAMES]),
  BENCH_CLOUD_SIZE: z
    .string()
    .regex(/^\d+[MG]$/, "a size like 512M or 1G")
    .default("512M"),
  BENCH_DIRTY_LIMIT: z
    .string()
    .regex(/^\d+[MG]$/, "a size like 2G")
    .default("2G"),
  BENCH_CLOUD_DURABILITY: z.enum(["cloud", "local"]).default("cloud"),
  BENCH_CLOUD_S3BACKER: z.enum(["compress-encrypt", "plain"]).default("compress-encrypt"),
  BENCH_WAN_SIZE: z
    .string()
    .regex(/^\d+[MG]$/, "a size like 512M or 1G")
    .default("512M"),
});

export function loadBenchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([k, v]) => k.startsWith("BENCH_") && v !== ""));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new Error(`bad benchmark settings:\n${parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`).join("\n")}`);
  }
  const c = parsed.data;
  return {
    runtime: c.BENCH_RUNTIME,
    ramp: c.BENCH_RAMP,
    rounds: c.BENCH_ROUNDS,
    volumeSize: c.BENCH_VOLUME_SIZE,
    fioSize: c.BENCH_FIO_SIZE,
    jobs: c.BENCH_JOBS,
    writeJobs: c.BENCH_WRITE_JOBS,
    servers: c.BENCH_SERVERS ?? (c.BENCH_BASELINE ? [...SERVER_NAMES] : SERVER_NAMES.filter((name) => name !== "stratus-base")),
    baseline: c.BENCH_BASELINE,
    keep: c.BENCH_KEEP === "1",
    workRoot: c.BENCH_DIR,
    sections: c.BENCH_SECTIONS,
    cloudSize: c.BENCH_CLOUD_SIZE,
    cloudDurability: c.BENCH_CLOUD_DURABILITY,
    cloudS3backer: c.BENCH_CLOUD_S3BACKER,
    wanSize: c.BENCH_WAN_SIZE,
    dirtyLimit: c.BENCH_DIRTY_LIMIT,
  };
}

export function sizeBytes(size: string): number {
  const match = /^(\d+)([MG])$/.exec(size)!;
  return Number(match[1]) * 2 ** (match[2] === "G" ? 30 : 20);
}
