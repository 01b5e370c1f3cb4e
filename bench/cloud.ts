/**
 * The cloud section of `npm run bench` (bench/README.md, "cloud"): Stratus against s3backer
 * (FUSE mode, block cache on; --compress --encrypt like Stratus, unless BENCH_CLOUD_S3BACKER=plain)
 * on the SAME s3rver, same 1 MiB block size, in one run, A B / B A:
 * - sequential write until the data is committed to the bucket (Stratus: nbdcopy --flush, then
 *   waiting for the volume's dirty bytes to reach zero; s3backer: fio write, then unmount, which is
 *   when its block cache is finally written out — its fsync does not flush that cache);
 * - cold sequential read with an empty cache (Stratus: restarted with its cache folder removed;
 *   s3backer: a fresh mount);
 * - warm 4k random read at queue depth 1 (fio nbd engine / fio psync on s3backer's file);
 * - PUT/GET/DELETE requests and body bytes, counted by s3rver itself for each system's key prefix
 *   ("vol" for Stratus, "s3b-N" for s3backer), and the bytes the bucket holds afterwards;
 * - s3rver's own PUT/GET ceiling with 1 MiB objects at 16 in flight, measured in every round right
 *   before the systems (it moves with the machine's load as much as they do: 150 to 240 MiB/s of PUTs
 *   in one afternoon). The ceiling ratios are the median of the per-round ratios: same round.
 *
 * Everything talks to s3rver directly. Counting through a pass-through proxy (as the bench did until
 * 2026-12-05) cost 0.3-0.4 of this machine's two cores while a system ran: CPU taken from the
 * systems and s3rver alike, for bookkeeping s3rver can do itself.
 *
 * Stratus runs on Node.js: a process that has just started spends a good share of its first seconds
 * compiling (V8's optimizing compiler was ~30% of the gateway's CPU in a 5 s write right after start).
 * A gateway in service has long done that, and s3backer is C. So before each measured write the gateway
 * writes and commits a warm-up volume (512 MiB here), and after each restart (the cold read) it first
 * reads that volume — cold too, its cache folder went with the restart — then the measured one. The
 * measured volume's chunks are never in the cache when its cold read starts: the GET count shows it.
 * The warm-up read's own CPU is reported too (no goal): what a cold read right after a start costs.
 * 128 MiB was too short a warm-up (bench/results/history.md, 2026-12-07, early afternoon).
 */
import { spawn } from "node:child_process";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { S3ObjectStore } from "@stratus/storage/s3-store";
import { startS3TestServer, type S3RequestCounts, type S3TestServer } from "@stratus/storage/testing";
import {
  CleanupStack,
  createVolume,
  listObjects,
  makeSparseImage,
  runFio,
  runOk,
  s3GatewayEnv,
  startGateway,
  waitFor,
  waitForCommitted,
  type Gateway,
} from "../e2e/harness";
import type { BenchConfig } from "./config";
import { measureCpu, type CpuUse } from "./cpu-usage";
import { median } from "./report";
import { stratusOverrides } from "./servers";

export type CloudSystem = "stratus" | "s3backer";

export interface CloudRound {
  round: number;
  system: CloudSystem;
  /** MB/s (1e6) of the whole write including the wait for the bucket. */
  committedWriteMBps: number;
  coldReadMBps: number;
  warmRandRead4kIops: number;
  write: RequestCounts;
  coldRead: RequestCounts;
  /** CPU while the write (until committed and closed) and the cold read ran. */
  writeCpu: CpuUse;
  coldReadCpu: CpuUse;
  /** Stratus: the warm-up volume's cold read, the first read after the restart. */
  firstColdReadCpu?: CpuUse;
  /** Bytes the bucket holds for this system's copy of the volume. */
  storedBytes: number;
  storedObjects: number;
}

export interface RequestCounts {
  PUT: number;
  GET: number;
  DELETE: number;
  other: number;
  bytesUp: number;
  bytesDown: number;
}

export interface Ceiling {
  putMiBps: number;
  getMiBps: number;
}

export interface CloudResults {
  volumeBytes: number;
  /** The peer's features: --compress --encrypt, or neither (before 2026-12-07). */
  s3backer: BenchConfig["cloudS3backer"];
  /** Medians over the rounds. */
  ceiling: Ceiling;
  ceilingRounds: Array<{ round: number; ceiling: Ceiling }>;
  /** Median over rounds of Stratus's figure / that round's ceiling (MiB/s over MiB/s). */
  ceilingRatios: { committedWrite: number; coldRead: number };
  rounds: CloudRound[];
  medians: Record<
    CloudSystem,
    Omit<CloudRound, "round" | "system" | "write" | "coldRead" | "writeCpu" | "coldReadCpu" | "firstColdReadCpu"> & {
      write: RequestCounts;
      coldRead: RequestCounts;
      writeCpu: CpuFigures;
      coldReadCpu: CpuFigures;
      /** Stratus only: CPU-seconds per GiB of system + client in the first cold read after a start. */
      firstColdReadSecondsPerGiB?: number;
    }
  >;
}

/** A phase's CPU as the table shows it (medians over rounds). */
export interface CpuFigures {
  /** Average cores busy on the whole machine, and used by s3rver. */
  machineCores: number;
  s3rverCores: number;
  /** CPU-seconds per GiB moved, the machine's less s3rver's: on a shared machine, others' work too. */
  restSecondsPerGiB: number;
  /** CPU-seconds per GiB of the system's and its client's own processes (the goal's figure). */
  systemSecondsPerGiB: number;
}

const MB = 1e6;
const say = (text: string) => process.stdout.write(`${text}\n`);

export async function runCloudBench(config: BenchConfig, work: string, image: string, volumeBytes: number, cleanup: CleanupStack): Promise<CloudResults> {
  // In the work folder, not /tmp: see bench/README.md, "Where the bench works".
  const s3 = await startS3TestServer({ bucket: "bench-cloud", parentDir: work });
  cleanup.push("s3rver", () => s3.stop());

  const gateway = await startGateway({
    dataDir: path.join(work, "stratus-cloud"),
    // The gateway's default cache (20G, dirty limit 2G): the volume fits in it, as it fits in s3backer's
    // block cache (as many blocks as the volume has).
    env: { ...s3GatewayEnv(s3), ...stratusOverrides() },
  });
  cleanup.push("stratus cloud gateway", () => gateway.stop());

  const warmUp = await prepareWarmUp(config, gateway, work);
  // One untimed pass first: s3rver's own first requests run cold (V8 compiling it), and the gateway
  // has just started; round 1's ceiling would come out low and flatter round 1's ratios.
  await s3Ceiling(s3, "untimed");

  const rounds: CloudRound[] = [];
  const ceilingRounds: CloudResults["ceilingRounds"] = [];
  for (let round = 1; round <= config.rounds; round++) {
    const ceiling = await s3Ceiling(s3, `round-${round}`);
    ceilingRounds.push({ round, ceiling });
    say(`  round ${round} s3rver ceiling, 1 MiB objects, 16 in flight: PUT ${ceiling.putMiBps.toFixed(0)} MiB/s, GET ${ceiling.getMiBps.toFixed(0)} MiB/s`);
    const order: CloudSystem[] = round % 2 === 1 ? ["stratus", "s3backer"] : ["s3backer", "stratus"];
    for (const system of order) {
      const result =
        system === "stratus"
          ? await benchStratus(config, work, image, volumeBytes, round, gateway, warmUp, s3)
          : await benchS3backer(config, work, volumeBytes, round, s3, cleanup);
      rounds.push(result);
      say(
        `  round ${round} ${system.padEnd(9)} committed write ${result.committedWriteMBps.toFixed(0)} MB/s, cold read ${result.coldReadMBps.toFixed(0)} MB/s, ` +
          `warm 4k randread QD1 ${result.warmRandRead4kIops.toFixed(0)} IOPS; write PUT ${result.write.PUT} GET ${result.write.GET} DELETE ${result.write.DELETE}, ` +
          `cold read GET ${result.coldRead.GET}; stored ${(result.storedBytes / 2 ** 20).toFixed(0)} MiB in ${result.storedObjects} objects; ` +
          `cores busy / s3rver's: write ${cores(result.writeCpu)}, cold read ${cores(result.coldReadCpu)}`,
      );
    }
  }

  const medians = Object.fromEntries(
    (["stratus", "s3backer"] as const).map((system) => {
      const mine = rounds.filter((r) => r.system === system);
      const m = (pick: (r: CloudRound) => number) => median(mine.map(pick));
      const counts = (pick: (r: CloudRound) => RequestCounts): RequestCounts => ({
        PUT: m((r) => pick(r).PUT),
        GET: m((r) => pick(r).GET),
        DELETE: m((r) => pick(r).DELETE),
        other: m((r) => pick(r).other),
        bytesUp: m((r) => pick(r).bytesUp),
        bytesDown: m((r) => pick(r).bytesDown),
      });
      const cpu = (pick: (r: CloudRound) => CpuUse): CpuFigures => ({
        machineCores: m((r) => pick(r).machine / pick(r).seconds),
        s3rverCores: m((r) => pick(r).s3rver / pick(r).seconds),
        restSecondsPerGiB: m((r) => (pick(r).machine - pick(r).s3rver) / (volumeBytes / 2 ** 30)),
        systemSecondsPerGiB: m((r) => pick(r).system / (volumeBytes / 2 ** 30)),
      });
      return [
        system,
        {
          committedWriteMBps: m((r) => r.committedWriteMBps),
          coldReadMBps: m((r) => r.coldReadMBps),
          warmRandRead4kIops: m((r) => r.warmRandRead4kIops),
          storedBytes: m((r) => r.storedBytes),
          storedObjects: m((r) => r.storedObjects),
          write: counts((r) => r.write),
          coldRead: counts((r) => r.coldRead),
          writeCpu: cpu((r) => r.writeCpu),
          coldReadCpu: cpu((r) => r.coldReadCpu),
          firstColdReadSecondsPerGiB: system === "stratus" ? m((r) => r.firstColdReadCpu!.system / (CLOUD_WARM_UP_BYTES / 2 ** 30)) : undefined,
        },
      ];
    }),
  ) as CloudResults["medians"];
  const ceiling: Ceiling = {
    putMiBps: median(ceilingRounds.map((r) => r.ceiling.putMiBps)),
    getMiBps: median(ceilingRounds.map((r) => r.ceiling.getMiBps)),
  };
  const perRound = (pick: (r: CloudRound, c: Ceiling) => number) =>
    median(rounds.filter((r) => r.system === "stratus").map((r) => pick(r, ceilingRounds.find((c) => c.round === r.round)!.ceiling)));
  const ceilingRatios = {
    committedWrite: perRound((r, c) => mibps(r.committedWriteMBps) / c.putMiBps),
    coldRead: perRound((r, c) => mibps(r.coldReadMBps) / c.getMiBps),
  };
  return { volumeBytes, s3backer: config.cloudS3backer, ceiling, ceilingRounds, ceilingRatios, rounds, medians };
}

const mibps = (mbps: number) => (mbps * MB) / 2 ** 20;

function cores(use: CpuUse): string {
  return `${(use.machine / use.seconds).toFixed(2)}/${(use.s3rver / use.seconds).toFixed(2)}`;
}

export function formatCloudTable(results: CloudResults): string {
  const s = results.medians.stratus;
  const b = results.medians.s3backer;
  const x = (value: number) => `${value.toFixed(2)}x`;
  const rows: string[][] = [
    [
      "committed seq write (MB/s)",
      s.committedWriteMBps.toFixed(0),
      b.committedWriteMBps.toFixed(0),
      ratio(s.committedWriteMBps, b.committedWriteMBps),
      `${x(results.ceilingRatios.committedWrite)} of PUT ceiling (no goal: the wan section has the speed goals now)`,
    ],
    [
      "cold seq read (MB/s)",
      s.coldReadMBps.toFixed(0),
      b.coldReadMBps.toFixed(0),
      ratio(s.coldReadMBps, b.coldReadMBps),
      `${x(results.ceilingRatios.coldRead)} of GET ceiling (no goal: see the wan section)`,
    ],
    [
      "warm 4k randread QD1 (IOPS)",
      s.warmRandRead4kIops.toFixed(0),
      b.warmRandRead4kIops.toFixed(0),
      ratio(s.warmRandRead4kIops, b.warmRandRead4kIops),
      "an NBD round trip over loopback TCP vs a FUSE call; for nbdkit file over NBD see the local section, QD1",
    ],
    [
      "write: PUT",
      String(s.write.PUT),
      String(b.write.PUT),
      ratio(s.write.PUT, b.write.PUT),
      `${(results.volumeBytes / 2 ** 20).toFixed(0)} chunks of 1 MiB written (goal <= 1 PUT per chunk per commit)`,
    ],
    ["write: GET", String(s.write.GET), String(b.write.GET), "-", ""],
    ["write: DELETE", String(s.write.DELETE), String(b.write.DELETE), "-", ""],
    ["write: other (POST/HEAD/LIST)", String(s.write.other), String(b.write.other), "-", ""],
    ["write: MiB sent", (s.write.bytesUp / 2 ** 20).toFixed(0), (b.write.bytesUp / 2 ** 20).toFixed(0), ratio(s.write.bytesUp, b.write.bytesUp), ""],
    ["cold read: GET", String(s.coldRead.GET), String(b.coldRead.GET), ratio(s.coldRead.GET, b.coldRead.GET), ""],
    [
      "cold read: MiB received",
      (s.coldRead.bytesDown / 2 ** 20).toFixed(0),
      (b.coldRead.bytesDown / 2 ** 20).toFixed(0),
      ratio(s.coldRead.bytesDown, b.coldRead.bytesDown),
      "",
    ],
    [
      "stored MiB",
      (s.storedBytes / 2 ** 20).toFixed(0),
      (b.storedBytes / 2 ** 20).toFixed(0),
      ratio(s.storedBytes, b.storedBytes),
      "random data: no compression gain expected (both compress unless s3backer is plain)",
    ],
    ["stored objects", String(s.storedObjects), String(b.storedObjects), ratio(s.storedObjects, b.storedObjects), ""],
    ...(["write", "cold read"] as const).flatMap((phase) => {
      const [sc, bc] = phase === "write" ? [s.writeCpu, b.writeCpu] : [s.coldReadCpu, b.coldReadCpu];
      return [
        [`${phase}: machine cores busy`, sc.machineCores.toFixed(2), bc.machineCores.toFixed(2), "-", "of 2"],
        [`${phase}: s3rver cores`, sc.s3rverCores.toFixed(2), bc.s3rverCores.toFixed(2), ratio(sc.s3rverCores, bc.s3rverCores), "what the bucket's server got"],
        [
          `${phase}: CPU-s per GiB, machine less s3rver`,
          sc.restSecondsPerGiB.toFixed(2),
          bc.restSecondsPerGiB.toFixed(2),
          ratio(sc.restSecondsPerGiB, bc.restSecondsPerGiB),
          "as before 2026-12-07: includes whatever else the machine ran",
        ],
        [
          `${phase}: CPU-s per GiB of system + client`,
          sc.systemSecondsPerGiB.toFixed(2),
          bc.systemSecondsPerGiB.toFixed(2),
          ratio(sc.systemSecondsPerGiB, bc.systemSecondsPerGiB),
          `their processes (gateway + nbdcopy; s3backer + fio/dd), user + sys; goal <= 0.5x s3backer ${results.s3backer}: ${sc.systemSecondsPerGiB <= 0.5 * bc.systemSecondsPerGiB ? "met" : "NOT met"}`,
        ],
      ];
    }),
    [
      "cold read right after a start: CPU-s per GiB",
      (s.firstColdReadSecondsPerGiB ?? 0).toFixed(2),
      b.coldReadCpu.systemSecondsPerGiB.toFixed(2),
      ratio(s.firstColdReadSecondsPerGiB ?? 0, b.coldReadCpu.systemSecondsPerGiB),
      `no goal: the warm-up volume's read (${CLOUD_WARM_UP_BYTES / 2 ** 20} MiB), while V8 still compiles; s3backer's is its cold read`,
    ],
  ];
  const header = ["cloud (medians)", "stratus", "s3backer", "stratus/s3backer", "note"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}x` : "-";
}

/** Seconds `work` took (s3backer's write: its window starts after the mount the counts include). */
export async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/**
 * Runs `work` and says what s3rver answered for `group` (the first segment of the keys) meanwhile,
 * and the CPU the machine and s3rver spent.
 */
export async function observed<T>(
  s3: S3TestServer,
  group: string,
  work: () => Promise<T>,
  systemPids?: () => number[],
): Promise<{ result: T; counts: RequestCounts; cpu: CpuUse }> {
  const before = (await s3.requestCounts())[group];
  const { result, cpu } = await measureCpu(s3.pid, work, systemPids);
  const after = (await s3.requestCounts())[group];
  const delta = (pick: (c: S3RequestCounts) => number) => (after === undefined ? 0 : pick(after)) - (before === undefined ? 0 : pick(before));
  return {
    result,
    cpu,
    counts: {
      PUT: delta((c) => c.PUT),
      GET: delta((c) => c.GET),
      DELETE: delta((c) => c.DELETE),
      other: delta((c) => c.POST + c.HEAD + c.OTHER),
      bytesUp: delta((c) => c.bodyBytesIn),
      bytesDown: delta((c) => c.bodyBytesOut),
    },
  };
}

export async function stored(s3: S3TestServer, prefix: string): Promise<{ bytes: number; objects: number }> {
  const store = direct(s3);
  try {
    const objects = await listObjects(store, prefix);
    return { bytes: objects.reduce((sum, o) => sum + o.size, 0), objects: objects.length };
  } finally {
    await store.close();
  }
}

export function direct(s3: S3TestServer, endpoint = s3.endpoint): S3ObjectStore {
  return new S3ObjectStore({
    bucket: s3.bucket,
    endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

/**
 * s3rver's own throughput: 256 x 1 MiB PUTs of new keys (`pass` names them) then GETs, 16 in flight.
 * The objects stay until the bench ends: deleting them here would put ~800 just-deleted inodes in
 * s3rver's folder, and for 30 s ext4 makes every file it creates scan past those (recently_deleted,
 * a third of s3rver's CPU in a profile of the write that followed), slowing the systems measured
 * next but never the ceiling.
 */
async function s3Ceiling(s3: S3TestServer, pass: string): Promise<Ceiling> {
  const store = direct(s3);
  const body = Buffer.alloc(2 ** 20, 0x5a);
  const keys = Array.from({ length: 256 }, (_, i) => `ceiling/${pass}/${String(i).padStart(4, "0")}`);
  const rate = async (op: (key: string) => Promise<unknown>) => {
    const queue = [...keys];
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let key = queue.shift(); key !== undefined; key = queue.shift()) await op(key);
      }),
    );
    return keys.length / (Number(process.hrtime.bigint() - started) / 1e9);
  };
  try {
    const putMiBps = await rate((key) => store.put(key, body));
    const getMiBps = await rate((key) => store.get(key, { offset: 0, length: body.length }));
    return { putMiBps, getMiBps };
  } finally {
    await store.close();
  }
}

async function randRead4k(config: BenchConfig, work: string, name: string, args: string[]): Promise<number> {
  const report = path.join(work, `fio-${name}.json`);
  const [job] = await runFio(
    [
      `--name=${name}`,
      "--rw=randread",
      "--bs=4k",
      "--iodepth=1",
      `--runtime=${config.runtime}`,
      "--time_based",
      `--ramp_time=${config.ramp}`,
      "--norandommap",
      "--randseed=42",
      ...args,
    ],
    report,
    (config.runtime + config.ramp + 120) * 1000,
  );
  return job!.read.iops;
}

/** The warm-up volume (see the top of this file): written once here, again before every measured write. */
export interface WarmUp {
  name: string;
  image: string;
}

/** The cloud section's warm-up volume (the wan section's is WAN_WARM_UP_BYTES). */
export const CLOUD_WARM_UP_BYTES = 512 * 2 ** 20;

export async function prepareWarmUp(config: BenchConfig, gateway: Gateway, work: string, bytes = CLOUD_WARM_UP_BYTES): Promise<WarmUp> {
  const name = "warm-up";
  const { path: image } = await makeSparseImage(path.join(work, "warm-up.img"), { size: bytes, seed: 3, dataFraction: 1 });
  await createVolume(gateway, name, { size: `${bytes / 2 ** 20}M`, chunkSize: "1M", durability: config.cloudDurability });
  return { name, image };
}

/**
 * Copies `image` into the volume with a final FLUSH and returns the seconds until the bucket held
 * it: for a cloud volume, until the FLUSH returned (it returns after the commit landed); for a
 * local one, until the commit that follows the FLUSH landed. Then waits until nothing is left to
 * commit and the volume closed (the cloud volume's cache is synced at close, off the client's path).
 */
export async function writeCommitted(gateway: Gateway, image: string, name: string, durability: "cloud" | "local"): Promise<number> {
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  await runOk("nbdcopy", ["--flush", image, gateway.uri(name)], { timeoutMs: 60 * 60_000 });
  const flushed = seconds();
  await waitForCommitted(gateway, name, { timeoutMs: 60 * 60_000 });
  return durability === "cloud" ? flushed : seconds();
}

async function benchStratus(
  config: BenchConfig,
  work: string,
  image: string,
  volumeBytes: number,
  round: number,
  gateway: Gateway,
  warmUp: WarmUp,
  s3: S3TestServer,
): Promise<CloudRound> {
  const name = `cloud-${round}`;
  const volume = await createVolume(gateway, name, { size: `${volumeBytes / 2 ** 20}M`, chunkSize: "1M", durability: config.cloudDurability });
  await writeCommitted(gateway, warmUp.image, warmUp.name, config.cloudDurability);
  const {
    result: writeSeconds,
    counts: write,
    cpu: writeCpu,
  } = await observed(
    s3,
    "vol",
    () => writeCommitted(gateway, image, name, config.cloudDurability),
    () => [gateway.pid],
  );
  const committedWriteMBps = volumeBytes / MB / writeSeconds;

  // Cold: the cache folder goes away with a restart (the database and bucket stay). It is moved
  // aside, not deleted (the bench's cleanup removes it): a new machine has no just-deleted files,
  // and for 30 s after a mass delete ext4 makes each new file scan past them (see s3Ceiling).
  await gateway.stop();
  await rename(path.join(gateway.dataDir, "cache"), path.join(work, `stratus-old-cache-${round}`));
  await gateway.restart();
  const { cpu: firstColdReadCpu } = await observed(
    s3,
    "vol",
    () => runOk("nbdcopy", [gateway.uri(warmUp.name), "null:"], { timeoutMs: 60 * 60_000 }),
    () => [gateway.pid],
  );
  // The CPU window is exactly the copy: its length is the read's time.
  const { counts: coldRead, cpu: coldReadCpu } = await observed(
    s3,
    "vol",
    () => runOk("nbdcopy", [gateway.uri(name), "null:"], { timeoutMs: 60 * 60_000 }),
    () => [gateway.pid],
  );
  const coldReadMBps = volumeBytes / MB / coldReadCpu.seconds;

  const warmRandRead4kIops = await randRead4k(config, work, `stratus-${round}`, ["--ioengine=nbd", `--uri=${gateway.uri(name)}`, `--size=${volumeBytes}`]);
  const inBucket = await stored(s3, `vol/${volume.id}/`);
  return {
    round,
    system: "stratus",
    committedWriteMBps,
    coldReadMBps,
    warmRandRead4kIops,
    write,
    coldRead,
    writeCpu,
    coldReadCpu,
    firstColdReadCpu,
    storedBytes: inBucket.bytes,
    storedObjects: inBucket.objects,
  };
}

async function benchS3backer(
  config: BenchConfig,
  work: string,
  volumeBytes: number,
  round: number,
  s3: S3TestServer,
  cleanup: CleanupStack,
): Promise<CloudRound> {
  const group = `s3b-${round}`;
  const prefix = `${group}/`;
  const mountDir = path.join(work, `s3backer-${round}`);
  await mkdir(mountDir, { recursive: true });
  const accessFile = path.join(work, "s3backer-access");
  await writeFile(accessFile, `${s3.accessKeyId}:${s3.secretAccessKey}\n`, { mode: 0o600 });
  const blocks = volumeBytes / 2 ** 20;
  const features = config.cloudS3backer === "plain" ? [] : await s3backerFeatures(work);
  const mount = () => mountS3backer(s3.endpoint, s3.bucket, accessFile, prefix, volumeBytes, blocks, mountDir, cleanup, features);
  const file = path.join(mountDir, "file");

  const {
    result: writeSeconds,
    counts: write,
    cpu: writeCpu,
  } = await observed(s3, group, async () => {
    const unmountWritten = await mount();
    return timed(async () => {
      await runFio(
        [
          "--name=s3backer-write",
          "--ioengine=psync",
          "--direct=1",
          `--filename=${file}`,
          "--rw=write",
          "--bs=1m",
          `--size=${volumeBytes}`,
          "--randseed=42",
          "--refill_buffers",
        ],
        path.join(work, `fio-s3backer-write-${round}.json`),
        60 * 60_000,
      );
      await unmountWritten(); // its block cache reaches the bucket only now
    });
  });
  const committedWriteMBps = volumeBytes / MB / writeSeconds;

  const unmount = await mount(); // a fresh process: an empty block cache
  const { counts: coldRead, cpu: coldReadCpu } = await observed(
    s3,
    group,
    () => runOk("dd", [`if=${file}`, "of=/dev/null", "bs=1M", "iflag=direct"], { timeoutMs: 60 * 60_000 }),
    () => [unmount.pid],
  );
  const coldReadMBps = volumeBytes / MB / coldReadCpu.seconds;

  const warmRandRead4kIops = await randRead4k(config, work, `s3backer-${round}`, [
    "--ioengine=psync",
    "--direct=1",
    `--filename=${file}`,
    `--size=${volumeBytes}`,
  ]);
  await unmount();
  const inBucket = await stored(s3, prefix);
  return {
    round,
    system: "s3backer",
    committedWriteMBps,
    coldReadMBps,
    warmRandRead4kIops,
    write,
    coldRead,
    writeCpu,
    coldReadCpu,
    storedBytes: inBucket.bytes,
    storedObjects: inBucket.objects,
  };
}

/** s3backer's flags for the features Stratus always has: compression and encryption (a password file). */
export async function s3backerFeatures(work: string): Promise<string[]> {
  const passwordFile = path.join(work, "s3backer-password");
  await writeFile(passwordFile, "stratus-bench-password\n", { mode: 0o600 });
  return ["--compress", "--encrypt", `--passwordFile=${passwordFile}`];
}

/** Mounts s3backer (FUSE, foreground, block cache as large as the volume); returns its unmount, which knows its pid. */
export async function mountS3backer(
  endpoint: string,
  bucket: string,
  accessFile: string,
  prefix: string,
  volumeBytes: number,
  blocks: number,
  mountDir: string,
  cleanup: CleanupStack,
  features: readonly string[] = [],
): Promise<(() => Promise<void>) & { pid: number }> {
  const args = [
    "-f",
    `--baseURL=${endpoint}/`,
    `--accessFile=${accessFile}`,
    `--prefix=${prefix}`,
    "--blockSize=1M",
    `--size=${volumeBytes}`,
    `--blockCacheSize=${blocks}`,
    "--listBlocks",
    ...features,
    bucket,
    mountDir,
  ];
  // detached = its own session: it lives exactly as long as we say.
  const child = spawn("s3backer", args, { detached: true, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr = (stderr + s).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const unmount = cleanup.push(`s3backer ${mountDir}`, async () => {
    if (gone) return;
    await runOk("fusermount", ["-u", mountDir], { timeoutMs: 60 * 60_000 }).catch(() => runOk("fusermount3", ["-u", mountDir], { timeoutMs: 60 * 60_000 }));
    await exited; // s3backer writes its dirty blocks out before it exits
  });
  await waitFor(
    "s3backer to mount",
    async () => {
      if (gone) throw new Error(`s3backer exited: ${stderr}`);
      const mounts = await runOk("findmnt", ["-n", mountDir]).catch(() => "");
      return mounts.trim() !== "" ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  return Object.assign(unmount, { pid: child.pid! });
}
