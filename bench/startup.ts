/**
 * The startup section (BENCH_SECTIONS=startup): how fast the CLI answers and how much memory the
 * gateway holds. hyperfine times `stratus --help` and `stratus volume list` against a running embedded
 * default (10 runs, median and max); RSS is read from /proc a few seconds after "stratus ready", for
 * the embedded default (first start on a new data folder, and a restart) and `--no-web`, and again
 * with many volumes open, each with several NBD connections.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { connectNbd, createVolume, REPO_ROOT, runOk, startGateway, STRATUS_BIN, type CleanupStack, type Gateway, type NbdSocketClient } from "../e2e/harness";
import { formatBytes, markdownTable } from "./report";
import { residentBytes } from "./servers";

const MiB = 2 ** 20;
/** How long after "stratus ready" the resident size is read (the "a few seconds after start"). */
const SETTLE_MS = 5_000;
const CLI_RUNS = 10;
const VOLUMES = 100;
const CONNECTIONS_PER_VOLUME = 4;

export const STARTUP_GOALS = {
  cliSeconds: 0.3,
  embeddedRss: 300 * MiB,
  noWebRss: 150 * MiB,
  /** With VOLUMES volumes open and CONNECTIONS_PER_VOLUME connections each: the embedded goal still holds. */
  manyVolumesRss: 300 * MiB,
};

export interface CliTiming {
  command: string;
  medianSeconds: number;
  maxSeconds: number;
  /** Mean user + system CPU time: steadier than wall time on a shared machine. */
  cpuSeconds: number;
}

export interface StartupResults {
  cli: CliTiming[];
  rss: {
    embeddedFirstStart?: number;
    embeddedRestart?: number;
    noWebFirstStart?: number;
    noWebRestart?: number;
    idleBeforeVolumes?: number;
    manyVolumes?: number;
  };
  volumes: number;
  connectionsPerVolume: number;
}

export async function runStartupBench(work: string, cleanup: CleanupStack, say: (text: string) => void): Promise<StartupResults> {
  // Built before timing anything: a stale build would make the first timed run a build.
  await runOk(process.execPath, [path.join(REPO_ROOT, "apps/nbd-gateway/bin/build.mjs")], { cwd: REPO_ROOT, timeoutMs: 120_000 });
  const results: StartupResults = { cli: [], rss: {}, volumes: VOLUMES, connectionsPerVolume: CONNECTIONS_PER_VOLUME };

  say("  --no-web: first start on a new data folder, then a restart");
  const noWeb = await startGateway({ dataDir: path.join(work, "startup-no-web"), args: ["--no-web"] });
  const stopNoWeb = cleanup.push("startup --no-web gateway", () => noWeb.stop());
  results.rss.noWebFirstStart = await settledRss(noWeb);
  await noWeb.restart();
  results.rss.noWebRestart = await settledRss(noWeb);
  await stopNoWeb();

  say("  embedded default: first start on a new data folder, then a restart");
  const gateway = await startGateway({
    dataDir: path.join(work, "startup-embedded"),
    // Every connection comes from 127.0.0.1: above the per-address default for the many-volumes step.
    env: { STRATUS_NBD_MAX_CONNECTIONS_PER_ADDRESS: String(2 * VOLUMES * CONNECTIONS_PER_VOLUME) },
  });
  cleanup.push("startup embedded gateway", () => gateway.stop());
  results.rss.embeddedFirstStart = await settledRss(gateway);
  await gateway.restart();
  results.rss.embeddedRestart = await settledRss(gateway);

  say(`  hyperfine: stratus --help and stratus volume list, ${CLI_RUNS} runs each`);
  results.cli = await timeCli(gateway, work);

  say(`  ${VOLUMES} volumes, ${CONNECTIONS_PER_VOLUME} NBD connections each`);
  results.rss.idleBeforeVolumes = await residentBytes(gateway.pid);
  for (let i = 0; i < VOLUMES; i++) await createVolume(gateway, `startup-${i}`, { size: "1G" });
  const clients: NbdSocketClient[] = [];
  cleanup.push("startup NBD clients", () => clients.forEach((client) => client.destroy()));
  for (let i = 0; i < VOLUMES; i++) {
    for (let c = 0; c < CONNECTIONS_PER_VOLUME; c++) {
      const client = await connectNbd(gateway.nbdPort, `startup-${i}`);
      clients.push(client);
      // One read each: the volume is open and every connection has served a request.
      await client.read(c * 4096, 4096);
    }
  }
  await sleep(SETTLE_MS);
  results.rss.manyVolumes = await residentBytes(gateway.pid);
  for (const client of clients.splice(0)) await client.close();
  return results;
}

/** The gateway's resident size SETTLE_MS after it said ready. */
async function settledRss(gateway: Gateway): Promise<number | undefined> {
  await sleep(SETTLE_MS);
  return residentBytes(gateway.pid);
}

async function timeCli(gateway: Gateway, work: string): Promise<CliTiming[]> {
  const report = path.join(work, "startup-hyperfine.json");
  const commands = {
    "stratus --help": `${process.execPath} ${STRATUS_BIN} --help`,
    "stratus volume list": `${process.execPath} ${STRATUS_BIN} volume list`,
  };
  // The CLI finds the gateway and its token as a user on this machine would: the data folder and URL.
  const env = { ...process.env, STRATUS_DATA_DIR: gateway.dataDir, STRATUS_URL: `http://127.0.0.1:${gateway.webPort}` };
  // -N: no shell between hyperfine and node, whose start is part of what is measured.
  await promisify(execFile)("hyperfine", ["-N", "--warmup", "1", "--runs", String(CLI_RUNS), "--export-json", report, ...Object.values(commands)], {
    cwd: REPO_ROOT,
    env,
    maxBuffer: 16 * MiB,
  });
  const parsed = JSON.parse(await readFile(report, "utf8")) as {
    results: { median: number; max: number; user: number; system: number; exit_codes: number[] }[];
  };
  return Object.keys(commands).map((command, i) => {
    const result = parsed.results[i]!;
    if (result.exit_codes.some((code) => code !== 0)) throw new Error(`${command} failed in hyperfine's runs`);
    return { command, medianSeconds: result.median, maxSeconds: result.max, cpuSeconds: result.user + result.system };
  });
}

export function formatStartupTable(results: StartupResults): string {
  const met = (ok: boolean | undefined) => (ok === undefined ? "-" : ok ? "met" : "NOT met");
  const mib = (bytes: number | undefined) => formatBytes(bytes);
  const rows: string[][] = results.cli.map((timing) => [
    `${timing.command} ≤ ${STARTUP_GOALS.cliSeconds} s`,
    `median ${timing.medianSeconds.toFixed(3)} s, max ${timing.maxSeconds.toFixed(3)} s (CPU ${timing.cpuSeconds.toFixed(3)} s)`,
    met(timing.medianSeconds <= STARTUP_GOALS.cliSeconds),
  ]);
  const rss = results.rss;
  const under = (bytes: number | undefined, goal: number) => (bytes === undefined ? undefined : bytes < goal);
  rows.push(
    [
      `embedded default RSS < ${mib(STARTUP_GOALS.embeddedRss)}, first start`,
      mib(rss.embeddedFirstStart),
      met(under(rss.embeddedFirstStart, STARTUP_GOALS.embeddedRss)),
    ],
    [`embedded default RSS < ${mib(STARTUP_GOALS.embeddedRss)}, restart`, mib(rss.embeddedRestart), met(under(rss.embeddedRestart, STARTUP_GOALS.embeddedRss))],
    [`--no-web RSS < ${mib(STARTUP_GOALS.noWebRss)}, first start`, mib(rss.noWebFirstStart), met(under(rss.noWebFirstStart, STARTUP_GOALS.noWebRss))],
    [`--no-web RSS < ${mib(STARTUP_GOALS.noWebRss)}, restart`, mib(rss.noWebRestart), met(under(rss.noWebRestart, STARTUP_GOALS.noWebRss))],
    [
      `${results.volumes} volumes × ${results.connectionsPerVolume} connections RSS < ${mib(STARTUP_GOALS.manyVolumesRss)}`,
      `${mib(rss.manyVolumes)} (idle before: ${mib(rss.idleBeforeVolumes)})`,
      met(under(rss.manyVolumes, STARTUP_GOALS.manyVolumesRss)),
    ],
  );
  return markdownTable(["goal", "figure", ""], rows);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
