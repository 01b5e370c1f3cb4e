/**
 * `npm run bench`: fio against the Stratus gateway and its peers (nbdkit file, qemu-nbd) in one run,
 * alternating servers job by job, round after round, and reporting medians and ratios
 * (bench/README.md: these machines are noisy, so only same-run ratios mean anything).
 * Results go to stdout and, as JSON, to bench/results/.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CleanupStack, makeSparseImage, REPO_ROOT, runFio, runOk } from "../e2e/harness";
import { loadBenchConfig, sizeBytes, type JobName, type ServerName } from "./config";
import { figure, fioArgs, JOBS } from "./jobs";
import { formatCloudTable, runCloudBench, type CloudResults } from "./cloud";
import { formatBytes, formatTable, summarize, type Sample } from "./report";
import { residentBytes, startNbdkitFile, startQemuNbd, startStratus, type BenchServer } from "./servers";
import { formatStartupTable, runStartupBench, type StartupResults } from "./startup";
import { formatTlsTable, runTlsBench, type TlsResults } from "./tls";
import { formatWanTable, runWanBench, WAN_LATENCY_MS, WAN_LINK_BYTES_PER_SECOND, type WanResults } from "./wan";

const config = loadBenchConfig();
const cleanup = new CleanupStack();
const say = (text: string) => process.stdout.write(`${text}\n`);

process.once("SIGINT", () => {
  say("\ninterrupted: stopping servers");
  void cleanup.runAll().finally(() => process.exit(130));
});

try {
  await main();
} finally {
  await cleanup.runAll();
}

async function main(): Promise<void> {
  // Not /tmp by default: creating a file there costs 10-20x more on these machines (bench/README.md).
  const root = config.workRoot ?? path.join(REPO_ROOT, "bench", ".work");
  await mkdir(root, { recursive: true });
  const work = await mkdtemp(path.join(root, "stratus-bench-"));
  cleanup.push("work folder", () => (config.keep ? say(`kept ${work}`) : rm(work, { recursive: true, force: true })));
  const local = config.sections.includes("local") ? await localSection(work, "local", config.jobs, config.servers) : undefined;
  // The write goals are against nbdkit file alone: qemu-nbd adds time, not a comparison the goals name.
  const writes = config.sections.includes("writes")
    ? await localSection(
        work,
        "writes",
        config.writeJobs,
        config.servers.filter((name) => name === "stratus" || name === "nbdkit-file"),
      )
    : undefined;
  const tls = config.sections.includes("tls") ? await tlsSection(work) : undefined;
  const cloud = config.sections.includes("cloud") ? await cloudSection(work) : undefined;
  const wan = config.sections.includes("wan") ? await wanSection(work) : undefined;
  const startup = config.sections.includes("startup") ? await startupSection(work) : undefined;

  const results = { date: new Date().toISOString(), config, machine: machine(), ...local, writes, tls, cloud, wan, startup };
  const dir = path.join(REPO_ROOT, "bench", "results");
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `bench-${results.date.replace(/[:.]/g, "-")}.json`);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  say(`results: ${path.relative(REPO_ROOT, file)}`);
}

/** The CLI's wall time and the gateway's resident memory (bench/startup.ts). */
async function startupSection(work: string): Promise<StartupResults> {
  say("\nstartup: the CLI's wall time (hyperfine) and the gateway's resident memory");
  const results = await runStartupBench(work, cleanup, say);
  say("");
  say(formatStartupTable(results));
  return results;
}

/** Warm reads plain and over TLS-PSK: Stratus against nbdkit file with --tls=require. */
async function tlsSection(work: string): Promise<TlsResults> {
  say(`\ntls: warm reads, plain and TLS-PSK, stratus vs nbdkit file, ${config.fioSize} region, ${config.rounds} round(s)`);
  const results = await runTlsBench(config, work, cleanup, say);
  say(`\nmedians of ${config.rounds} round(s), ${config.runtime} s each, one libnbd client (bench/nbd-load.c) for all:\n`);
  say(formatTlsTable(results.summaries));
  return results;
}

/** Stratus against s3backer on one s3rver: committed write, cold read, warm randread, requests. */
async function cloudSection(work: string): Promise<CloudResults> {
  say(`\ncloud: stratus vs s3backer (${config.cloudS3backer}) on one s3rver, ${config.cloudSize} volume, 1 MiB blocks, ${config.rounds} round(s)`);
  const image = await makeSparseImage(path.join(work, "cloud.img"), { size: sizeBytes(config.cloudSize), seed: 2, dataFraction: 1 });
  const results = await runCloudBench(config, work, image.path, image.size, cleanup);
  await rm(image.path);
  const { ceiling } = results;
  say(
    `\nmedians of ${config.rounds} round(s); s3rver ceiling PUT ${ceiling.putMiBps.toFixed(0)} MiB/s, GET ${ceiling.getMiBps.toFixed(0)} MiB/s ` +
      `(ratios below are to the same round's ceiling):\n`,
  );
  say(formatCloudTable(results));
  return results;
}

/** Stratus against s3backer (both compressing and encrypting) on one s3rver behind a WAN-shaped proxy. */
async function wanSection(work: string): Promise<WanResults> {
  const link = `${(WAN_LINK_BYTES_PER_SECOND * 8) / 1e9} Gbit/s`;
  say(`\nwan: stratus vs s3backer --compress --encrypt, s3rver behind ${WAN_LATENCY_MS} ms and ${link}, ${config.wanSize} volume, ${config.rounds} round(s)`);
  const image = await makeSparseImage(path.join(work, "wan.img"), { size: sizeBytes(config.wanSize), seed: 4, dataFraction: 1 });
  const results = await runWanBench(config, work, image.path, image.size, cleanup);
  await rm(image.path);
  say(`\nmedians of ${config.rounds} round(s); link ${link} = ${(WAN_LINK_BYTES_PER_SECOND / 1e6).toFixed(0)} MB/s of payload at most:\n`);
  say(formatWanTable(results));
  return results;
}

/** A warm section: fio jobs against the gateway (cache in the path) and its peers (nbdkit file, qemu-nbd). */
async function localSection(work: string, section: "local" | "writes", jobs: readonly JobName[], serverNames: readonly ServerName[]) {
  const rounds = config.rounds;
  const perRun = config.runtime + config.ramp;
  say(
    `\nstratus bench: ${jobs.length} jobs x ${serverNames.length} servers x ${rounds} rounds, ` +
      `${perRun} s each (~${Math.ceil((jobs.length * serverNames.length * rounds * (perRun + 1)) / 60)} min of fio), ` +
      `volume ${config.volumeSize}, fio region ${config.fioSize}`,
  );

  say(`making a ${config.volumeSize} random image`);
  const image = await makeSparseImage(path.join(work, "source.img"), { size: sizeBytes(config.volumeSize), seed: 1, dataFraction: 1 });

  const servers: BenchServer[] = [];
  let prefillSeconds: number | undefined;
  for (const name of serverNames) {
    say(`starting ${name}`);
    if (name === "stratus" || name === "stratus-base") {
      if (name === "stratus-base" && config.baseline === undefined) throw new Error("stratus-base needs BENCH_BASELINE=<another checkout>");
      const repoRoot = name === "stratus-base" ? config.baseline : undefined;
      const stratus = await startStratus(work, image.path, config.volumeSize, config.dirtyLimit, { name, repoRoot, dataDirName: `${section}-${name}-data` });
      cleanup.push(`${name} gateway`, () => stratus.stop());
      if (name === "stratus") prefillSeconds = stratus.prefillSeconds;
      say(`  pre-filled with nbdcopy in ${stratus.prefillSeconds.toFixed(1)} s (${(image.size / 1e6 / stratus.prefillSeconds).toFixed(0)} MB/s)`);
      servers.push(stratus);
    } else {
      const file = path.join(work, `${name}.img`);
      await runOk("cp", ["--reflink=auto", image.path, file], { timeoutMs: 10 * 60_000 });
      const peer = name === "nbdkit-file" ? await startNbdkitFile(work, file) : await startQemuNbd(work, file);
      cleanup.push(name, () => peer.stop());
      servers.push(peer);
    }
  }
  await rm(image.path); // each server has its own copy now

  // Only the gateway's memory is watched: it must stay flat however much data the volume holds.
  const gatewayPid = servers.find((s) => s.name === "stratus")?.pid;
  const rss: { afterPrefill?: number; peak?: number; end?: number } = {};
  let stopSampler = async () => {};
  if (gatewayPid !== undefined) {
    rss.afterPrefill = await residentBytes(gatewayPid);
    const sampler = setInterval(() => {
      void residentBytes(gatewayPid).then((bytes) => (rss.peak = Math.max(rss.peak ?? 0, bytes ?? 0)));
    }, 250);
    stopSampler = cleanup.push("rss sampler", () => clearInterval(sampler));
  }

  const samples: Sample[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const jobName of jobs) {
      const job = JOBS[jobName];
      // Rotate who goes first each round so no server always runs on a machine warmed by another.
      const order = servers.map((_, i) => servers[(i + round - 1) % servers.length]!);
      for (const server of order) {
        const report = path.join(work, `fio-${round}-${jobName}-${server.name}.json`);
        // Every job starts with no writeback of an earlier one's pages: a FLUSH-heavy job run while the
        // job before drained to the disk measured the drain, not the server (results/history.md).
        await runOk("sync", [], { timeoutMs: 10 * 60_000 });
        const [result] = await runFio(fioArgs(job, server.uri, config), report, (perRun + 120) * 1000);
        await server.settle?.();
        const direction = job.rw.includes("read") ? result!.read : result!.write;
        const sample: Sample = {
          round,
          job: jobName,
          server: server.name,
          value: figure(job, direction),
          iops: direction.iops,
          bytesPerSecond: direction.bw * 1024,
          meanLatencyUs: (direction.clat_ns?.mean ?? 0) / 1000,
        };
        samples.push(sample);
        say(`  round ${round} ${jobName.padEnd(18)} ${server.name.padEnd(12)} ${sample.value.toFixed(0).padStart(8)} ${job.metric}`);
      }
    }
  }
  await stopSampler();
  if (gatewayPid !== undefined) rss.end = await residentBytes(gatewayPid);

  const summaries = summarize(samples, jobs, serverNames);
  say(`\nmedians of ${rounds} round(s), ${config.runtime} s each (random jobs in IOPS, 1M jobs in MB/s):\n`);
  say(formatTable(summaries, serverNames));
  if (gatewayPid !== undefined) {
    say(`\ngateway RSS: after pre-fill ${formatBytes(rss.afterPrefill)}, peak ${formatBytes(rss.peak)}, end ${formatBytes(rss.end)}`);
  }

  for (const server of servers) await server.stop(); // the cloud section gets the machine to itself
  return { prefill: { bytes: image.size, seconds: prefillSeconds }, gatewayRssBytes: rss, summaries, samples };
}

function machine() {
  const version = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8" }).split("\n")[0]!.trim();
    } catch {
      return "unknown";
    }
  };
  const servers: Record<ServerName, string> = {
    stratus: `node ${process.version}`,
    "stratus-base": config.baseline === undefined ? "-" : `${config.baseline} at ${version("git", ["-C", config.baseline, "rev-parse", "--short", "HEAD"])}`,
    "nbdkit-file": version("nbdkit", ["--version"]),
    "qemu-nbd": version("qemu-nbd", ["--version"]),
  };
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryBytes: os.totalmem(), fio: version("fio", ["--version"]), servers };
}
