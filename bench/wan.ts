/**
 * The wan section of `npm run bench` (bench/README.md, "wan"): Stratus against s3backer with
 * --compress --encrypt (Stratus always does both), each on the SAME s3rver behind the fault proxy
 * shaped like a WAN: 25 ms before each response, a 1 Gbit/s link each way (a token bucket on bytes,
 * shared by all connections). Per round, A B / B A:
 * - committed sequential write (as in the cloud section: Stratus until the copy's FLUSH of a `cloud`
 *   volume returned; s3backer until its unmount wrote its block cache out);
 * - cold sequential read (Stratus restarted without its cache folder; s3backer freshly mounted);
 * - cold 4k random read at queue depth 32, for a few seconds right after the same kind of restart
 *   (fio's nbd engine at iodepth 32 / 32 psync threads on s3backer's FUSE file);
 * - commit latency: FLUSH of a `cloud` volume after a 4 MiB write (Stratus only: s3backer's fsync
 *   does not write its block cache out), against 3 proxy round trips plus 4 MiB at link speed;
 * - PUTs and GETs per GiB, counted by s3rver for each system's key prefix: a cloud bill is a result too.
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { startFaultProxy, startS3TestServer, type FaultProxy, type HttpMethod, type S3TestServer } from "@stratus/storage/testing";
import { CleanupStack, connectNbd, createVolume, runFio, runOk, s3GatewayEnv, startGateway, type Gateway } from "../e2e/harness";
import { direct, mountS3backer, observed, prepareWarmUp, timed, writeCommitted, type RequestCounts, type WarmUp } from "./cloud";
import type { BenchConfig } from "./config";
import type { CpuUse } from "./cpu-usage";
import { markdownTable, median } from "./report";
import { stratusOverrides } from "./servers";

/** The shaped link: what the proxy adds before each response, and its speed each way. */
export const WAN_LATENCY_MS = 25;
export const WAN_LINK_BYTES_PER_SECOND = 1e9 / 8;
/** How long the cold random read runs: short, so most of its reads still miss (a 512 MiB volume is 512 chunks). */
const RANDREAD_SECONDS = 3;
const COMMIT_BYTES = 4 * 2 ** 20;
const COMMIT_SAMPLES = 5;
/** The wan section's warm-up volume: smaller than the cloud section's, as each MiB crosses the slow link twice a round. */
const WAN_WARM_UP_BYTES = 128 * 2 ** 20;

export type WanSystem = "stratus" | "s3backer";

export interface WanRound {
  round: number;
  system: WanSystem;
  committedWriteMBps: number;
  coldReadMBps: number;
  coldRandRead4kIops: number;
  /** Reads fio completed in the cold random read. */
  coldRandReads: number;
  write: RequestCounts;
  coldRead: RequestCounts;
  coldRandRead: RequestCounts;
  /** CPU while the write and the cold read ran: the machine's, and s3rver's (the testbed's share). */
  writeCpu: CpuUse;
  coldReadCpu: CpuUse;
  /** Stratus only: each FLUSH's milliseconds and the requests the proxy saw while it ran. */
  commits?: Array<{ ms: number; requests: Record<HttpMethod, number> }>;
}

export interface WanResults {
  volumeBytes: number;
  latencyMs: number;
  linkBytesPerSecond: number;
  /** Median round trip of a small GET through the proxy (latency plus s3rver's answer). */
  roundTripMs: number;
  rounds: WanRound[];
  medians: Record<
    WanSystem,
    {
      committedWriteMBps: number;
      coldReadMBps: number;
      coldRandRead4kIops: number;
      writePutsPerGiB: number;
      writeGetsPerGiB: number;
      coldReadGetsPerGiB: number;
      /** GETs per 1000 random 4k reads. */
      randReadGetsPerThousand: number;
      commitMs?: number;
      commitRequests?: number;
      /** Average cores busy on the machine / used by s3rver. */
      writeCores: [number, number];
      coldReadCores: [number, number];
    }
  >;
}

const MB = 1e6;
const GiB = 2 ** 30;
const say = (text: string) => process.stdout.write(`${text}\n`);

export async function runWanBench(config: BenchConfig, work: string, image: string, volumeBytes: number, cleanup: CleanupStack): Promise<WanResults> {
  const s3 = await startS3TestServer({ bucket: "bench-wan", parentDir: work });
  cleanup.push("wan s3rver", () => s3.stop());
  const proxy = await startFaultProxy({
    target: { host: "127.0.0.1", port: Number(new URL(s3.endpoint).port) },
    latencyMs: WAN_LATENCY_MS,
    linkBytesPerSecond: WAN_LINK_BYTES_PER_SECOND,
  });
  cleanup.push("wan proxy", () => proxy.close());
  const gateway = await startGateway({ dataDir: path.join(work, "stratus-wan"), env: { ...s3GatewayEnv(s3, proxy.endpoint), ...stratusOverrides() } });
  cleanup.push("stratus wan gateway", () => gateway.stop());
  const warmUp = await prepareWarmUp({ ...config, cloudDurability: "cloud" }, gateway, work, WAN_WARM_UP_BYTES);
  const roundTripMs = await proxyRoundTrip(s3, proxy);
  say(`  proxy round trip (small GET): ${roundTripMs.toFixed(1)} ms`);

  const rounds: WanRound[] = [];
  for (let round = 1; round <= config.rounds; round++) {
    const order: WanSystem[] = round % 2 === 1 ? ["stratus", "s3backer"] : ["s3backer", "stratus"];
    for (const system of order) {
      const result =
        system === "stratus"
          ? await benchStratus(work, image, volumeBytes, round, gateway, warmUp, s3, proxy)
          : await benchS3backer(work, volumeBytes, round, s3, proxy, cleanup);
      rounds.push(result);
      const commit = result.commits === undefined ? "" : `, commit ${median(result.commits.map((c) => c.ms)).toFixed(0)} ms`;
      say(
        `  round ${round} ${system.padEnd(9)} committed write ${result.committedWriteMBps.toFixed(0)} MB/s, cold read ${result.coldReadMBps.toFixed(0)} MB/s, ` +
          `cold 4k randread QD32 ${result.coldRandRead4kIops.toFixed(0)} IOPS${commit}; write PUT ${result.write.PUT} GET ${result.write.GET}, ` +
          `cold read GET ${result.coldRead.GET}, randread GET ${result.coldRandRead.GET} for ${result.coldRandReads} reads`,
      );
    }
  }

  const medians = Object.fromEntries(
    (["stratus", "s3backer"] as const).map((system) => {
      const mine = rounds.filter((r) => r.system === system);
      const m = (pick: (r: WanRound) => number) => median(mine.map(pick));
      const commits = mine.flatMap((r) => r.commits ?? []);
      return [
        system,
        {
          committedWriteMBps: m((r) => r.committedWriteMBps),
          coldReadMBps: m((r) => r.coldReadMBps),
          coldRandRead4kIops: m((r) => r.coldRandRead4kIops),
          writePutsPerGiB: m((r) => r.write.PUT / (volumeBytes / GiB)),
          writeGetsPerGiB: m((r) => r.write.GET / (volumeBytes / GiB)),
          coldReadGetsPerGiB: m((r) => r.coldRead.GET / (volumeBytes / GiB)),
          randReadGetsPerThousand: m((r) => (r.coldRandRead.GET / Math.max(1, r.coldRandReads)) * 1000),
          commitMs: commits.length === 0 ? undefined : median(commits.map((c) => c.ms)),
          commitRequests: commits.length === 0 ? undefined : median(commits.map((c) => Object.values(c.requests).reduce((a, b) => a + b, 0))),
          writeCores: [m((r) => r.writeCpu.machine / r.writeCpu.seconds), m((r) => r.writeCpu.s3rver / r.writeCpu.seconds)],
          coldReadCores: [m((r) => r.coldReadCpu.machine / r.coldReadCpu.seconds), m((r) => r.coldReadCpu.s3rver / r.coldReadCpu.seconds)],
        },
      ];
    }),
  ) as WanResults["medians"];
  return { volumeBytes, latencyMs: WAN_LATENCY_MS, linkBytesPerSecond: WAN_LINK_BYTES_PER_SECOND, roundTripMs, rounds, medians };
}

/** The goals of bench/README.md, "wan": one row each, with the peer's figure and met or not. */
export function formatWanTable(results: WanResults): string {
  const s = results.medians.stratus;
  const b = results.medians.s3backer;
  const linkMBps = results.linkBytesPerSecond / MB;
  const budgetMs = 3 * results.roundTripMs + (COMMIT_BYTES / results.linkBytesPerSecond) * 1000;
  const x = (a: number, c: number) => (c > 0 ? `${(a / c).toFixed(2)}x` : "-");
  const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
  const speed = (label: string, ours: number, theirs: number): string[] => [
    label,
    `>= 1.5x s3backer, >= 0.85x link (${(0.85 * linkMBps).toFixed(0)})`,
    ours.toFixed(0),
    theirs.toFixed(0),
    `${x(ours, theirs)}; ${x(ours, linkMBps)} of link`,
    `${verdict(ours >= 1.5 * theirs)} / ${verdict(ours >= 0.85 * linkMBps)}`,
  ];
  const cores = (label: string, ours: [number, number], theirs: [number, number]) => [
    label,
    "(of 2; the proxy runs in the bench)",
    ours.map((c) => c.toFixed(2)).join(" / "),
    theirs.map((c) => c.toFixed(2)).join(" / "),
    "-",
    "-",
  ];
  const count = (label: string, ours: number, theirs: number) => [label, "(reported)", ours.toFixed(0), theirs.toFixed(0), x(ours, theirs), "-"];
  const rows: string[][] = [
    speed("committed seq write (MB/s)", s.committedWriteMBps, b.committedWriteMBps),
    speed("cold seq read (MB/s)", s.coldReadMBps, b.coldReadMBps),
    [
      "cold 4k randread QD32 (IOPS)",
      ">= 1.5x s3backer",
      s.coldRandRead4kIops.toFixed(0),
      b.coldRandRead4kIops.toFixed(0),
      x(s.coldRandRead4kIops, b.coldRandRead4kIops),
      verdict(s.coldRandRead4kIops >= 1.5 * b.coldRandRead4kIops),
    ],
    [
      "commit latency, FLUSH after 4 MiB (ms)",
      `<= 3 round trips + 4 MiB on the link (${budgetMs.toFixed(0)})`,
      s.commitMs?.toFixed(0) ?? "-",
      "-",
      s.commitMs === undefined
        ? "-"
        : `${((s.commitMs - (COMMIT_BYTES / results.linkBytesPerSecond) * 1000) / results.roundTripMs).toFixed(1)} round trips beyond the data`,
      s.commitMs === undefined ? "-" : verdict(s.commitMs <= budgetMs),
    ],
    ["requests per commit (proxy)", "(reported)", s.commitRequests?.toFixed(0) ?? "-", "-", "-", "-"],
    count("write: PUTs per GiB", s.writePutsPerGiB, b.writePutsPerGiB),
    count("write: GETs per GiB", s.writeGetsPerGiB, b.writeGetsPerGiB),
    count("cold seq read: GETs per GiB", s.coldReadGetsPerGiB, b.coldReadGetsPerGiB),
    count("cold randread: GETs per 1000 reads", s.randReadGetsPerThousand, b.randReadGetsPerThousand),
    cores("write: cores busy, machine / s3rver", s.writeCores, b.writeCores),
    cores("cold read: cores busy, machine / s3rver", s.coldReadCores, b.coldReadCores),
  ];
  return markdownTable(["wan (medians)", "goal", "stratus", "s3backer", "ratio", "verdict"], rows);
}

/** A small object's GET through the proxy, a few times: the round trip every request pays. */
async function proxyRoundTrip(s3: S3TestServer, proxy: FaultProxy): Promise<number> {
  const store = direct(s3, proxy.endpoint);
  try {
    await store.put("rtt/probe", Buffer.from("probe"));
    const samples: number[] = [];
    for (let i = 0; i < 9; i++) samples.push((await timed(() => store.get("rtt/probe"))) * 1000);
    return median(samples);
  } finally {
    await store.close();
  }
}

async function benchStratus(
  work: string,
  image: string,
  volumeBytes: number,
  round: number,
  gateway: Gateway,
  warmUp: WarmUp,
  s3: S3TestServer,
  proxy: FaultProxy,
): Promise<WanRound> {
  const name = `wan-${round}`;
  await createVolume(gateway, name, { size: `${volumeBytes / 2 ** 20}M`, chunkSize: "1M", durability: "cloud" });
  await writeCommitted(gateway, warmUp.image, warmUp.name, "cloud");
  const { result: writeSeconds, counts: write, cpu: writeCpu } = await observed(s3, "vol", () => writeCommitted(gateway, image, name, "cloud"));
  const commits = await commitLatency(gateway, `wan-commit-${round}`, proxy);

  const coldRestart = async (tag: string) => {
    await gateway.stop();
    await rename(path.join(gateway.dataDir, "cache"), path.join(work, `stratus-wan-old-cache-${round}-${tag}`));
    await gateway.restart();
    await runOk("nbdcopy", [gateway.uri(warmUp.name), "null:"], { timeoutMs: 60 * 60_000 }); // the compiler's warm-up, see cloud.ts
  };
  await coldRestart("seq");
  const { counts: coldRead, cpu } = await observed(s3, "vol", () => runOk("nbdcopy", [gateway.uri(name), "null:"], { timeoutMs: 60 * 60_000 }));
  await coldRestart("rand");
  const { result: rand, counts: coldRandRead } = await observed(s3, "vol", () =>
    coldRandRead4k(work, `stratus-${round}`, ["--ioengine=nbd", `--uri=${gateway.uri(name)}`, "--iodepth=32"], volumeBytes),
  );
  return {
    round,
    system: "stratus",
    committedWriteMBps: volumeBytes / MB / writeSeconds,
    coldReadMBps: volumeBytes / MB / cpu.seconds,
    coldRandRead4kIops: rand.iops,
    coldRandReads: rand.reads,
    write,
    coldRead,
    coldRandRead,
    writeCpu,
    coldReadCpu: cpu,
    commits,
  };
}

/** FLUSH of a `cloud` volume after a 4 MiB write, a few times: milliseconds and the requests it took. */
async function commitLatency(gateway: Gateway, name: string, proxy: FaultProxy): Promise<NonNullable<WanRound["commits"]>> {
  await createVolume(gateway, name, { size: `${(COMMIT_SAMPLES * COMMIT_BYTES) / 2 ** 20}M`, chunkSize: "1M", durability: "cloud" });
  const client = await connectNbd(gateway.nbdPort, name);
  const commits: NonNullable<WanRound["commits"]> = [];
  try {
    for (let i = 0; i < COMMIT_SAMPLES; i++) {
      const data = Buffer.alloc(COMMIT_BYTES);
      for (let at = 0; at < data.length; at += 4) data.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, at); // incompressible
      const pieces = Array.from({ length: COMMIT_BYTES / 2 ** 20 }, (_, k) =>
        client.write(i * COMMIT_BYTES + k * 2 ** 20, data.subarray(k * 2 ** 20, (k + 1) * 2 ** 20)),
      );
      await Promise.all(pieces);
      const before = proxy.stats().forwarded;
      const seconds = await timed(() => client.flush());
      const after = proxy.stats().forwarded;
      const requests = Object.fromEntries(Object.entries(after).map(([method, n]) => [method, n - before[method as HttpMethod]])) as Record<HttpMethod, number>;
      commits.push({ ms: seconds * 1000, requests });
    }
  } finally {
    await client.close();
  }
  return commits;
}

async function benchS3backer(work: string, volumeBytes: number, round: number, s3: S3TestServer, proxy: FaultProxy, cleanup: CleanupStack): Promise<WanRound> {
  const group = `s3bw-${round}`;
  const mountDir = path.join(work, `s3backer-wan-${round}`);
  await mkdir(mountDir, { recursive: true });
  const accessFile = path.join(work, "s3backer-access");
  await writeFile(accessFile, `${s3.accessKeyId}:${s3.secretAccessKey}\n`, { mode: 0o600 });
  const passwordFile = path.join(work, "s3backer-password");
  await writeFile(passwordFile, "bench-wan-password\n", { mode: 0o600 });
  const mount = () =>
    mountS3backer(proxy.endpoint, s3.bucket, accessFile, `${group}/`, volumeBytes, volumeBytes / 2 ** 20, mountDir, cleanup, [
      "--compress",
      "--encrypt",
      `--passwordFile=${passwordFile}`,
    ]);
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
          "--name=s3backer-wan-write",
          "--ioengine=psync",
          "--direct=1",
          `--filename=${file}`,
          "--rw=write",
          "--bs=1m",
          `--size=${volumeBytes}`,
          "--randseed=42",
          "--refill_buffers",
        ],
        path.join(work, `fio-s3backer-wan-write-${round}.json`),
        60 * 60_000,
      );
      await unmountWritten(); // its block cache reaches the bucket only now
    });
  });

  let unmount = await mount();
  const { counts: coldRead, cpu } = await observed(s3, group, () =>
    runOk("dd", [`if=${file}`, "of=/dev/null", "bs=1M", "iflag=direct"], { timeoutMs: 60 * 60_000 }),
  );
  await unmount();
  unmount = await mount();
  const { result: rand, counts: coldRandRead } = await observed(s3, group, () =>
    coldRandRead4k(work, `s3backer-${round}`, ["--ioengine=psync", "--direct=1", `--filename=${file}`, "--numjobs=32", "--group_reporting"], volumeBytes),
  );
  await unmount();
  return {
    round,
    system: "s3backer",
    committedWriteMBps: volumeBytes / MB / writeSeconds,
    coldReadMBps: volumeBytes / MB / cpu.seconds,
    coldRandRead4kIops: rand.iops,
    coldRandReads: rand.reads,
    write,
    coldRead,
    coldRandRead,
    writeCpu,
    coldReadCpu: cpu,
  };
}

async function coldRandRead4k(work: string, name: string, args: string[], volumeBytes: number): Promise<{ iops: number; reads: number }> {
  const [job] = await runFio(
    [
      `--name=cold-${name}`,
      "--rw=randread",
      "--bs=4k",
      `--runtime=${RANDREAD_SECONDS}`,
      "--time_based",
      "--norandommap",
      "--randseed=42",
      `--size=${volumeBytes}`,
      ...args,
    ],
    path.join(work, `fio-wan-cold-${name}.json`),
    (RANDREAD_SECONDS + 120) * 1000,
  );
  return { iops: job!.read.iops, reads: job!.read.io_bytes / 4096 };
}
