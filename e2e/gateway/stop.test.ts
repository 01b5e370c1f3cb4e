/**
 * Stopping never hangs and starting again always works (the embedded default, run with `npm start`
 * as a user runs it): SIGINT or SIGTERM to the whole process group (a terminal's Ctrl-C, a process
 * manager), SIGTERM to npm alone, and two SIGINTs in a row each stop every process of the tree, the
 * private redis-server included, within STRATUS_STOP_TIMEOUT + 5 s; the next start reads back what was
 * written and the bucket ends up holding its commit. Then kill -9 of the whole group with an immediate
 * restart, a killed gateway left as an unreaped zombie, a second Stratus on a running one's data, logs
 * on a terminal and on a pipe, and a stop after the pipe lost its reader.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CleanupStack,
  describeLogs,
  gatewayMasterKey,
  groupMembers,
  isRunning,
  isZombie,
  manifestGenerations,
  MiB,
  npmStart,
  openBucket,
  run,
  runOk,
  seededBytes,
  sha256File,
  startGateway,
  STRATUS_BIN,
  REPO_ROOT,
  startProxiedBucket,
  waitFor,
  waitForCommitted,
  type Gateway,
  type NpmStart,
} from "../harness";

const STOP_TIMEOUT_S = 10;
const WRITE_BYTES = 300 * MiB;

const cleanup = new CleanupStack();
let workDir: string;
afterAll(() => cleanup.runAll());
beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), "stratus-stop-"));
  cleanup.push("work dir", () => rm(workDir, { recursive: true, force: true }));
});

/** Starts `npm start`, registered so a failed test still ends its process group. */
async function started(dataDir: string, args: readonly string[] = []): Promise<NpmStart> {
  const tree = await npmStart(dataDir, args);
  cleanup.push(`npm start ${tree.pid}`, () => {
    for (const pid of groupMembers(tree.pid)) process.kill(pid, "SIGKILL");
  });
  await tree.ready;
  return tree;
}

/** Every process of the tree, redis-server included, is gone; returns how long that took. */
async function allGone(tree: NpmStart, redisPid: number, since: number): Promise<number> {
  const left = () => [...groupMembers(tree.pid), ...(isRunning(redisPid) ? [redisPid] : [])];
  try {
    await waitFor("every process of npm start to exit", () => (left().length === 0 ? true : undefined), { timeoutMs: (STOP_TIMEOUT_S + 30) * 1000 });
  } catch (error) {
    const running = left().map((pid) => {
      const signals = readFileSync(`/proc/${pid}/status`, "utf8")
        .split("\n")
        .filter((line) => /^(State|Sig|Shd)/.test(line))
        .join(" ");
      return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")} ${signals}`;
    });
    throw new Error(`still running:\n${running.join("\n")}\n${describeLogs(tree.logs())}`, { cause: error });
  }
  return (Date.now() - since) / 1000;
}

describe("npm start stops within STRATUS_STOP_TIMEOUT and starts again with everything written", () => {
  it("SIGINT to the group, SIGTERM to the group, SIGTERM to npm alone, two SIGINTs 100 ms apart", async () => {
    const dataDir = path.join(workDir, "data");
    const image = path.join(workDir, "image.raw");
    const out = path.join(workDir, "out.raw");
    const cli = (tree: NpmStart, args: string[]) => runOk(process.execPath, [STRATUS_BIN, ...args], { cwd: REPO_ROOT, env: tree.env, timeoutMs: 60_000 });

    let tree = await started(dataDir);
    const volume = JSON.parse(await cli(tree, ["volume", "create", "disk", "--size", "512M", "--json"])) as { id: string };
    const store = openBucket({ dataDir });
    const masterKey = await gatewayMasterKey(dataDir);
    const stops: Array<{ name: string; signal: (tree: NpmStart) => Promise<void> }> = [
      { name: "SIGINT to the group", signal: async (t) => void process.kill(-t.pid, "SIGINT") },
      { name: "SIGTERM to the group", signal: async (t) => void process.kill(-t.pid, "SIGTERM") },
      { name: "SIGTERM to npm alone", signal: async (t) => void process.kill(t.pid, "SIGTERM") },
      {
        name: "two SIGINTs 100 ms apart",
        signal: async (t) => {
          process.kill(-t.pid, "SIGINT");
          await new Promise((resolve) => setTimeout(resolve, 100));
          process.kill(-t.pid, "SIGINT");
        },
      },
    ];
    let lastEpoch = 0;
    for (const [round, stop] of stops.entries()) {
      const next = seededBytes(100 + round);
      await writeFile(image, Buffer.concat(Array.from({ length: WRITE_BYTES / (4 * MiB) }, () => next(4 * MiB))));
      await runOk("nbdcopy", ["--flush", image, `nbd://127.0.0.1:${tree.nbdPort}/disk`], { timeoutMs: 120_000 });

      const redisPid = tree.redisPid();
      const signalled = Date.now();
      await stop.signal(tree);
      const seconds = await allGone(tree, redisPid, signalled);
      console.log(`${stop.name}: every process gone after ${seconds} s`);
      expect(seconds, `${stop.name}: the tree took ${seconds} s to stop`).toBeLessThanOrEqual(STOP_TIMEOUT_S + 5);

      tree = await started(dataDir);
      await runOk("nbdcopy", [`nbd://127.0.0.1:${tree.nbdPort}/disk`, out], { timeoutMs: 120_000 });
      await run("truncate", ["-s", String(WRITE_BYTES), out]);
      expect(await sha256File(out), `${stop.name}: what the next start reads`).toBe(await sha256File(image));
      // Committed at stop, or by the next start: the bucket's newest manifest names every chunk written.
      const manifest = await waitFor(
        `${stop.name}: a new commit in the bucket`,
        async () => {
          const found = await manifestGenerations(store, volume.id, masterKey);
          return found && found.epoch > lastEpoch && found.chunks.length >= WRITE_BYTES / MiB ? found : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      lastEpoch = manifest.epoch;
    }
    const redisPid = tree.redisPid();
    process.kill(-tree.pid, "SIGINT");
    await allGone(tree, redisPid, Date.now());
  }, 900_000);
});

describe("a bucket that stalls", () => {
  it("the stop gives up on the commit at STRATUS_STOP_TIMEOUT, a second signal exits at once, and no acknowledged write is lost", async () => {
    const { proxy, env: bucketEnv, close } = await startProxiedBucket({ seed: 19 });
    cleanup.push("s3 server and fault proxy", close);
    const dataDir = path.join(workDir, "stall");
    const env = (stopTimeout: string) => ({ ...bucketEnv, STRATUS_STOP_TIMEOUT: stopTimeout });
    const image = (seed: number) => {
      const file = path.join(workDir, `stall-${seed}.raw`);
      return writeFile(file, seededBytes(seed)(16 * MiB)).then(() => file);
    };
    const readBack = async (gateway: Gateway) => {
      const out = path.join(workDir, "stall-out.raw");
      await runOk("nbdcopy", [gateway.uri("v"), out], { timeoutMs: 60_000 });
      await run("truncate", ["-s", String(16 * MiB), out]);
      return sha256File(out);
    };
    const logged = (gateway: Gateway, text: string) => gateway.logs().some((line) => String(line.msg).includes(text));

    let gateway = await startGateway({ dataDir, env: env("3s") });
    await gateway.cli(["volume", "create", "v", "--size", "64M"]);
    // Every request to the bucket hangs from here on: no upload and no commit can finish.
    proxy.setMode({ stall: true });
    const first = await image(1);
    await runOk("nbdcopy", ["--flush", first, gateway.uri("v")], { timeoutMs: 60_000 });
    let since = Date.now();
    expect(await gateway.stop()).toMatchObject({ code: 0, killed: false });
    expect((Date.now() - since) / 1000).toBeLessThanOrEqual(3 + 5);
    expect(logged(gateway, "stopping before the cloud commit finished: 1 volume(s) keep uncommitted data")).toBe(true);

    // The next start (the bucket answers again) commits what the stop left in the cache.
    proxy.setMode({ stall: false });
    gateway = await startGateway({ dataDir, env: env("60s") });
    expect(logged(gateway, "the cache holds uncommitted data from the previous run: committing it")).toBe(true);
    await waitForCommitted(gateway, "v");
    expect(await readBack(gateway)).toBe(await sha256File(first));
    proxy.setMode({ stall: true });
    const second = await image(2);
    await runOk("nbdcopy", [second, gateway.uri("v")], { timeoutMs: 60_000 }); // acknowledged, never flushed
    process.kill(gateway.pid, "SIGTERM");
    await waitFor("the stop to begin", () => (logged(gateway, "stopping: finishing requests") ? true : undefined));
    // Later than the window in which near signals count as copies of one (a terminal's Ctrl-C fans out).
    await new Promise((resolve) => setTimeout(resolve, 500));
    since = Date.now();
    expect(await gateway.stop()).toMatchObject({ code: 0, killed: false });
    expect((Date.now() - since) / 1000).toBeLessThan(10); // not the 60 s STRATUS_STOP_TIMEOUT
    expect(logged(gateway, "stopping now")).toBe(true);

    proxy.setMode({ stall: false });
    gateway = await startGateway({ dataDir, env: env("10s") });
    cleanup.push("stall gateway", () => gateway.dispose());
    expect(await readBack(gateway)).toBe(await sha256File(second));
    await waitForCommitted(gateway, "v");
  }, 300_000);
});

describe("a Redis that does not answer", () => {
  it("does not hold the stop: the final commit uploads from the gateway itself", async () => {
    const gateway = await startGateway({ dataDir: path.join(workDir, "no-redis") });
    cleanup.push("no-redis gateway", () => gateway.dispose());
    const volume = JSON.parse(await gateway.cli(["volume", "create", "v", "--size", "64M", "--json"])) as { id: string };
    const file = path.join(workDir, "no-redis.raw");
    await writeFile(file, seededBytes(7)(32 * MiB));
    await runOk("nbdcopy", ["--flush", file, gateway.uri("v")], { timeoutMs: 60_000 });

    // Hung, not dead: a private redis-server that dies is started again at once, one that hangs is not.
    const redisPid = Number(readFileSync(path.join(gateway.dataDir, "redis.pid"), "utf8").split("\n")[0]);
    process.kill(redisPid, "SIGSTOP");
    cleanup.push("hung redis-server", () => {
      if (isRunning(redisPid)) process.kill(redisPid, "SIGKILL");
    });
    const since = Date.now();
    expect(await gateway.stop()).toMatchObject({ code: 0, killed: false });
    expect((Date.now() - since) / 1000).toBeLessThanOrEqual(STOP_TIMEOUT_S + 5);
    expect(gateway.logs().some((line) => line.msg === "Redis is not answering: the final commits upload from this process")).toBe(true);
    const manifest = await manifestGenerations(openBucket({ dataDir: gateway.dataDir }), volume.id, await gatewayMasterKey(gateway.dataDir));
    expect(manifest?.chunks.length).toBe(32);
  });
});

describe("starting again always works", () => {
  it("kill -9 of the whole group and an immediate restart, 20 times; the private redis-server goes with it", async () => {
    const dataDir = path.join(workDir, "kill9");
    let tree = await started(dataDir, ["--no-web"]);
    for (let cycle = 0; cycle < 20; cycle++) {
      const redisPid = tree.redisPid();
      process.kill(-tree.pid, "SIGKILL");
      tree = await started(dataDir, ["--no-web"]).catch((error: unknown) => {
        throw new Error(`start after kill -9 number ${cycle + 1} failed`, { cause: error });
      });
      // Its parent-death signal ended the old one (its own process group was not killed).
      await waitFor("the killed gateway's redis-server to exit", () => (isRunning(redisPid) ? undefined : true), { timeoutMs: 10_000 });
    }
    const redisPid = tree.redisPid();
    process.kill(-tree.pid, "SIGKILL");
    await waitFor("the last redis-server to exit without a restart", () => (isRunning(redisPid) ? undefined : true), { timeoutMs: 10_000 });
  });

  it("a killed gateway left as a zombie by a parent that never reaps it does not block the next start", async () => {
    const dataDir = path.join(workDir, "zombie");
    const gateway = await startGateway({ dataDir });
    await gateway.stop(); // made the data dir; the gateway below runs under a parent of our choosing
    const env: NodeJS.ProcessEnv = { ...process.env, STRATUS_DATA_DIR: dataDir, STRATUS_NBD_PORT: "0", STRATUS_WEB_PORT: "0", STRATUS_LOG_LEVEL: "info" };
    const parent = spawn(
      "python3",
      [
        "-c",
        "import subprocess,sys\np=subprocess.Popen(sys.argv[1:])\nprint(p.pid,flush=True)\nsys.stdin.read()",
        process.execPath,
        STRATUS_BIN,
        "gateway",
        "--no-web",
      ],
      { env, stdio: ["pipe", "pipe", "inherit"] },
    );
    cleanup.push("zombie parent", () => parent.kill("SIGKILL"));
    let output = "";
    parent.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const pid = await waitFor("the gateway's pid", () => Number(output.split("\n")[0]) || undefined);
    await waitFor("the gateway to be ready", () => (output.includes('"msg":"stratus ready"') ? true : undefined), { timeoutMs: 90_000 });
    process.kill(pid, "SIGKILL");
    await waitFor("the killed gateway to be a zombie", () => (isZombie(pid) ? true : undefined));

    const again = await startGateway({ dataDir });
    expect(isZombie(pid)).toBe(true); // still unreaped while the new one runs
    await again.stop();
  });

  it("a second Stratus on the data dir of a running one gets the clear 'in use' error", async () => {
    const first = await startGateway();
    cleanup.push("first gateway", () => first.dispose());
    const second = await run(process.execPath, [STRATUS_BIN, "gateway", "--no-web"], {
      cwd: REPO_ROOT,
      env: { ...process.env, STRATUS_DATA_DIR: first.dataDir, STRATUS_NBD_PORT: "0", STRATUS_WEB_PORT: "0" },
      timeoutMs: 60_000,
    });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`the embedded database in ${path.join(first.dataDir, "db")} is in use by process ${first.pid}`);
    // The running one was not disturbed, its private Redis included.
    await first.cli(["volume", "create", "still-served", "--size", "16M"]);
    expect(await runOk("nbdinfo", ["--size", first.uri("still-served")])).toBe(`${16 * MiB}\n`);
  });
});

describe("logs", () => {
  it("are readable lines on a terminal and JSON on a pipe", async () => {
    const env = (name: string) => {
      const vars: NodeJS.ProcessEnv = {
        ...process.env,
        STRATUS_DATA_DIR: path.join(workDir, name),
        STRATUS_NBD_PORT: "0",
        STRATUS_WEB_PORT: "0",
        STRATUS_LOG_LEVEL: "info",
      };
      delete vars.STRATUS_LOG_FORMAT;
      return vars;
    };
    const gatewayCommand = `exec ${process.execPath} ${STRATUS_BIN} gateway --no-web`;
    const terminal = spawn("script", ["-qfec", gatewayCommand, "/dev/null"], { env: env("logs-tty"), stdio: ["pipe", "pipe", "inherit"] });
    const onTerminal = await readUntilReady(terminal);
    const readyLine = onTerminal.split("\n").find((line) => line.includes("stratus ready"))!;
    expect(readyLine).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: stratus ready/);

    const pipe = spawn(process.execPath, [STRATUS_BIN, "gateway", "--no-web"], { env: env("logs-pipe"), stdio: ["ignore", "pipe", "inherit"] });
    const onPipe = await readUntilReady(pipe);
    const json = JSON.parse(onPipe.split("\n").find((line) => line.includes("stratus ready"))!) as { msg: string; level: number };
    expect(json).toMatchObject({ msg: "stratus ready", level: 30 });
  });
});

describe("a gateway whose output lost its reader", () => {
  it("stops on SIGTERM with exit code 0, dropping the lines nobody reads", async () => {
    const dataDir = path.join(workDir, "lost-reader");
    const env: NodeJS.ProcessEnv = { ...process.env, STRATUS_DATA_DIR: dataDir, STRATUS_NBD_PORT: "0", STRATUS_WEB_PORT: "0", STRATUS_LOG_LEVEL: "debug" };
    delete env.STRATUS_LOG_FORMAT;
    const child = spawn(process.execPath, [STRATUS_BIN, "gateway", "--no-web"], { env, stdio: ["ignore", "pipe", "pipe"] });
    cleanup.push("lost-reader gateway", () => void child.kill("SIGKILL"));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await waitFor("stratus ready", () => (output.includes("stratus ready") ? true : undefined), { timeoutMs: 90_000 });
    const redisPid = Number(readFileSync(path.join(dataDir, "redis.pid"), "utf8").split("\n")[0]);
    // Nobody reads stdout or stderr from here on: every write the gateway makes fails with EPIPE.
    child.stdout!.destroy();
    child.stderr!.destroy();
    child.kill("SIGTERM");
    const code = await Promise.race([exited, new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), (STOP_TIMEOUT_S + 5) * 1000).unref())]);
    expect(code, "the gateway's exit after SIGTERM").toBe(0);
    // It ran its stop (the private redis-server is one of the steps), it did not just die.
    await waitFor("the private redis-server to exit", () => (isRunning(redisPid) ? undefined : true), { timeoutMs: 10_000 });
  });
});

/** Reads a gateway's output until it is ready, stops it with SIGTERM, and returns what it printed. */
async function readUntilReady(child: ReturnType<typeof spawn>): Promise<string> {
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise((resolve) => child.once("close", resolve));
  try {
    await waitFor("stratus ready", () => (output.includes("stratus ready") ? true : undefined), { timeoutMs: 90_000 });
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
  // eslint-disable-next-line no-control-regex
  return output.replace(/\u001b\[[0-9;]*m/g, "").replaceAll("\r", "");
}
