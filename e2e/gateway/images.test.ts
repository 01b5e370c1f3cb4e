/**
 * Issue 23, images in and out: `stratus volume import` and `stratus volume export` against a real
 * gateway. A raw and a qcow2 image with holes import equal (qemu-img compare) and the bucket holds
 * about their data, not their size; an export is a sparse file; an import interrupted mid-copy leaves
 * no volume; `--used-only` on a 2 GiB ext4 whose free blocks hold random garbage uploads about the
 * used blocks only, and the copy passes e2fsck with every file's checksum equal.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleValue, scrapeMetrics } from "@stratus/control/testing/prometheus-text";
import {
  collectLines,
  connectNbd,
  freePort,
  inheritedEnv,
  listVolumes,
  makeSparseImage,
  MiB,
  run,
  runOk,
  seededBytes,
  startGateway,
  STRATUS_BIN,
  REPO_ROOT,
  volumeBucketUsage,
  waitFor,
  type Gateway,
  withGatewayLogs,
} from "../harness";

let gateway: Gateway;
let work: string;
let metricsPort: number;
/** /dev/shm (tmpfs) if this machine has it, else `work`: for the 2 GiB ext4 image, removed once imported. */
let ramWork: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-images-"));
  ramWork = await mkdtemp(path.join("/dev/shm", "stratus-e2e-images-")).catch(() => work);
  metricsPort = await freePort();
  gateway = await startGateway({ env: { STRATUS_METRICS_LISTEN: `127.0.0.1:${metricsPort}` } });
}, 120_000);

afterAll(async () => {
  await gateway?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
  if (ramWork) await rm(ramWork, { recursive: true, force: true });
}, 60_000);

const withLogs = <T>(body: () => Promise<T>): Promise<T> => withGatewayLogs(gateway, body);

/** Bytes a file takes on disk (what `du` reports). */
const onDisk = async (file: string) => (await stat(file)).blocks * 512;

/** The CLI's environment for this gateway, as gateway.cli runs it, with its own config folder (device credentials). */
const cliEnv = () => ({
  ...inheritedEnv(),
  STRATUS_DATA_DIR: gateway.dataDir,
  STRATUS_URL: `http://127.0.0.1:${gateway.webPort}`,
  STRATUS_NBD_PORT: String(gateway.nbdPort),
  XDG_CONFIG_HOME: path.join(work, "config"),
});

/** `stratus ARGS…` with cliEnv(), its stdout, stderr and exit code (gateway.cli keeps only stdout). */
const runCli = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [STRATUS_BIN, ...args], { cwd: REPO_ROOT, env: { ...cliEnv(), ...env }, timeoutMs: 40_000 });

/** The volume id at the end of `stratus volume import`'s answer. */
const idFrom = (importOutput: string) => /, id (\S+)$/.exec(importOutput.trim())![1]!;

describe("stratus volume import / export", () => {
  it(
    "imports a raw and a qcow2 image with holes: equal, and the bucket holds about the data",
    () =>
      withLogs(async () => {
        const image = await makeSparseImage(path.join(work, "holes.img"), { size: 96 * MiB, seed: 23, dataFraction: 0.35 });
        const qcow2 = path.join(work, "holes.qcow2");
        await runOk("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", image.path, qcow2]);

        for (const [name, file, format] of [
          ["raw-in", image.path, "raw"],
          ["qcow2-in", qcow2, "qcow2"],
        ] as const) {
          const out = await gateway.cli(["volume", "import", name, file]);
          expect(out).toMatch(new RegExp(`^imported .* \\(${format}, 96 MiB\\) into volume ${name}`));
          await runOk("qemu-img", ["compare", "-f", format, "-F", "raw", file, gateway.uri(name)]);
          const stored = await volumeBucketUsage(gateway, idFrom(out));
          console.log(
            `import ${format}: ${image.dataBytes / MiB} MiB of data in a ${image.size / MiB} MiB image -> ${(stored.bytes / MiB).toFixed(1)} MiB in the bucket`,
          );
          expect(stored.bytes).toBeGreaterThan(image.dataBytes * 0.95);
          expect(stored.bytes).toBeLessThan(image.dataBytes * 1.15);
        }

        // Export both ways: sparse files that compare equal to the source.
        for (const format of ["raw", "qcow2"] as const) {
          const file = path.join(work, `export.${format}`);
          const out = await gateway.cli(["volume", "export", "qcow2-in", file, "--format", format]);
          expect(out).toMatch(new RegExp(`^exported volume qcow2-in \\(96 MiB\\) to .* \\(${format}, `));
          await runOk("qemu-img", ["compare", "-f", format, "-F", "raw", file, image.path]);
          const used = await onDisk(file);
          console.log(`export ${format}: ${(used / MiB).toFixed(1)} MiB on disk for ${image.dataBytes / MiB} MiB of data in 96 MiB`);
          expect(used).toBeLessThan(image.dataBytes * 1.1);
        }
        await expect(gateway.cli(["volume", "export", "qcow2-in", path.join(work, "export.raw")])).rejects.toThrow(/exists: pass --force/);
        // A CLI that assumes another NBD port says which setting to fix, and leaves no partial file.
        const lost = await runCli(["volume", "export", "qcow2-in", path.join(work, "lost.raw")], { STRATUS_NBD_PORT: String(await freePort()) });
        expect(lost.code).toBe(1);
        expect(lost.stderr).toMatch(/nothing listens at nbd:\/\/127\.0\.0\.1:\d+: set STRATUS_NBD_PORT/);
        expect((await readdir(work)).filter((f) => f.startsWith("lost.raw"))).toEqual([]);
        // Each import's reaper (there for a killed CLI) let go once the import said done.
        expect((await listVolumes(gateway)).map((v) => v.name)).toEqual(expect.arrayContaining(["raw-in", "qcow2-in"]));
      }),
    120_000,
  );

  it(
    "an import interrupted mid-copy leaves no volume: Ctrl-C (the CLI cleans up) and kill -9 (its reaper does)",
    () =>
      withLogs(async () => {
        const image = await makeSparseImage(path.join(work, "big.img"), { size: 384 * MiB, seed: 7, dataFraction: 1 });
        for (const signal of ["SIGINT", "SIGKILL"] as const) {
          const name = `cut-${signal.toLowerCase()}`;
          const cli = spawn(process.execPath, [STRATUS_BIN, "volume", "import", name, image.path], {
            cwd: REPO_ROOT,
            env: cliEnv(),
            stdio: ["ignore", "pipe", "pipe"],
          });
          const said: string[] = [];
          let interruptedAt: string | undefined;
          collectLines(cli.stderr, (line) => {
            said.push(line);
            // The first progress line: nbdcopy is copying into the new volume.
            if (interruptedAt === undefined && line.startsWith(`importing ${name} `)) {
              interruptedAt = line;
              cli.kill(signal);
            }
          });
          collectLines(cli.stdout, (line) => said.push(`stdout: ${line}`));
          const exit = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => cli.once("close", (code, sig) => resolve([code, sig])));
          console.log(`${signal} at "${interruptedAt}"; CLI said:\n${said.join("\n")}`);
          expect(interruptedAt).toBeDefined();
          if (signal === "SIGINT") {
            expect(exit).toEqual([1, null]);
            expect(said.join("\n")).toMatch(/import interrupted \(SIGINT\): volume cut-sigint was deleted/);
            expect((await listVolumes(gateway)).map((v) => v.name)).not.toContain(name);
          } else {
            expect(exit).toEqual([null, "SIGKILL"]);
            await waitFor("the reaper to delete the volume", async () => ((await listVolumes(gateway)).some((v) => v.name === name) ? undefined : true), {
              timeoutMs: 30_000,
            });
          }
        }
        await rm(image.path);
      }),
    90_000,
  );

  it(
    "--used-only uploads only the used blocks of an ext4 whose free space holds garbage",
    () =>
      withLogs(async () => {
        const phases: string[] = [];
        let mark = Date.now();
        const phase = (what: string) => {
          phases.push(`${what} ${((Date.now() - mark) / 1000).toFixed(1)} s`);
          mark = Date.now();
        };
        // ~200 MiB of files, in a 2 GiB image first filled with random garbage (mkfs -d, nodiscard: no mount).
        const tree = path.join(ramWork, "tree");
        await mkdir(path.join(tree, "sub"), { recursive: true });
        const bytes = seededBytes(11);
        const files: string[] = [];
        for (let i = 0; i < 50; i++) {
          const name = i % 2 === 0 ? `f${i}.bin` : `sub/f${i}.bin`;
          await writeFile(path.join(tree, name), bytes(3 * MiB + i * 37_000));
          files.push(name);
        }
        // In memory when /dev/shm is there: 2 GiB of garbage written to a VM's disk is most of this test's time.
        const fsImage = path.join(ramWork, "ext4.img");
        // One 16 MiB block of random bytes over and over: every chunk is as incompressible as fresh garbage, at memcpy speed.
        const garbage = seededBytes(12)(16 * MiB);
        const handle = await open(fsImage, "w");
        for (let offset = 0; offset < 2048 * MiB; offset += 16 * MiB) await handle.write(garbage, 0, 16 * MiB, offset);
        await handle.close();
        await runOk("mkfs.ext4", ["-q", "-F", "-E", "nodiscard", "-d", tree, fsImage]);
        const header = await runOk("dumpe2fs", ["-h", fsImage]);
        const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(header)![1]);
        const usedBytes = (field("Block count") - field("Free blocks")) * field("Block size");
        // The garbage is there: a MiB near the end (free; mke2fs zeroes only the device's last few KiB) is the random block.
        const tail = await open(fsImage, "r");
        const last = Buffer.alloc(MiB);
        await tail.read(last, 0, MiB, 2040 * MiB);
        await tail.close();
        expect(last.equals(garbage.subarray(8 * MiB, 9 * MiB))).toBe(true);
        phase("test data");

        const out = await gateway.cli(["volume", "import", "used", fsImage, "--used-only"]);
        expect(out).toMatch(/^imported .* \(raw, 2 GiB\) into volume used/);
        phase("import --used-only");
        const stored = await volumeBucketUsage(gateway, idFrom(out));
        console.log(
          `--used-only: ${(usedBytes / MiB).toFixed(1)} MiB of used blocks in 2 GiB -> ${(stored.bytes / MiB).toFixed(1)} MiB in the bucket (${(stored.bytes / usedBytes).toFixed(3)}x)`,
        );
        expect(stored.bytes).toBeLessThanOrEqual(usedBytes * 1.15);
        // What crossed NBD (the bucket's objects are compressed): the gateway's own count of written bytes.
        const metrics = await scrapeMetrics(`http://127.0.0.1:${metricsPort}/metrics`);
        const written = sampleValue(metrics, "stratus_volume_written_bytes_total", "stratus_volume_written_bytes_total", { volume: idFrom(out) });
        console.log(`--used-only: ${((written ?? NaN) / MiB).toFixed(1)} MiB written over NBD (${((written ?? NaN) / usedBytes).toFixed(3)}x the used blocks)`);
        expect(written).toBeGreaterThan(0);
        expect(written).toBeLessThanOrEqual(usedBytes * 1.15);
        await rm(fsImage);

        // The copy: e2fsck clean, and every file's checksum equal (debugfs reads the exported image, no mount).
        const copy = path.join(work, "used-copy.img");
        await gateway.cli(["volume", "export", "used", copy]);
        phase("export");
        await runOk("e2fsck", ["-fn", copy]);
        const dumped = path.join(work, "dumped");
        await mkdir(path.join(dumped, "sub"), { recursive: true });
        const script = files.map((name) => `dump /${name} ${path.join(dumped, name)}`).join("\n");
        await writeFile(path.join(work, "dump.cmds"), `${script}\n`);
        await runOk("debugfs", ["-f", path.join(work, "dump.cmds"), copy]);
        for (const name of files) expect(sha256(await readFile(path.join(dumped, name))), name).toBe(sha256(await readFile(path.join(tree, name))));
        phase("e2fsck + checksums");
        console.log(`--used-only phases: ${phases.join(", ")}`);
      }),
    120_000,
  );

  it(
    "--used-only on NTFS (ntfsclone) uploads only the used clusters; the copy checks clean, files equal",
    () =>
      withLogs(async () => {
        // A 512 MiB image first filled with garbage; mkntfs -Q does not clear it. Files go in with ntfscp (no mount).
        const fsImage = path.join(ramWork, "ntfs.img");
        const garbage = seededBytes(21)(16 * MiB);
        const handle = await open(fsImage, "w");
        for (let offset = 0; offset < 512 * MiB; offset += 16 * MiB) await handle.write(garbage, 0, 16 * MiB, offset);
        await handle.close();
        await runOk("mkntfs", ["-F", "-Q", "-q", fsImage]);
        const bytes = seededBytes(22);
        const files: Array<{ name: string; sum: string }> = [];
        for (let i = 0; i < 24; i++) {
          const local = path.join(work, `ntfs-f${i}.bin`);
          const data = bytes(4 * MiB + i * 41_000);
          await writeFile(local, data);
          await runOk("ntfscp", [fsImage, local, `/f${i}.bin`]);
          files.push({ name: `/f${i}.bin`, sum: sha256(data) });
          await rm(local);
        }
        // ntfsresize counts what is in use in decimal MB, rounded: take the upper end.
        const info = await runOk("ntfsresize", ["--info", "--force", fsImage]);
        const usedBytes = (Number(/Space in use\s*:\s*(\d+) MB/.exec(info)![1]) + 1) * 1e6;

        const out = await gateway.cli(["volume", "import", "ntfs-used", fsImage, "--used-only"]);
        expect(out).toMatch(/^imported .* \(raw, 512 MiB\) into volume ntfs-used/);
        const stored = await volumeBucketUsage(gateway, idFrom(out));
        console.log(
          `--used-only NTFS: ${(usedBytes / MiB).toFixed(1)} MiB in use in 512 MiB -> ${(stored.bytes / MiB).toFixed(1)} MiB in the bucket (${(stored.bytes / usedBytes).toFixed(3)}x)`,
        );
        expect(stored.bytes).toBeLessThanOrEqual(usedBytes * 1.15);
        expect(stored.bytes).toBeGreaterThan(files.length * 4 * MiB);
        await rm(fsImage);

        const copy = path.join(work, "ntfs-copy.img");
        await gateway.cli(["volume", "export", "ntfs-used", copy]);
        expect(await runOk("ntfsfix", ["--no-action", copy])).toMatch(/processed successfully/);
        for (const file of files) {
          const read = path.join(work, "ntfs-read.bin");
          await runOk("sh", ["-c", 'exec ntfscat "$0" "$1" > "$2"', copy, file.name, read]);
          expect(sha256(await readFile(read)), file.name).toBe(file.sum);
        }
        await rm(copy);
      }),
    120_000,
  );

  it(
    "imports and exports over TLS-PSK with this machine's device credential (--device)",
    () =>
      withLogs(async () => {
        const image = await makeSparseImage(path.join(work, "tls.img"), { size: 24 * MiB, seed: 5, dataFraction: 0.5 });
        const imported = await runCli(["volume", "import", "tls-in", image.path, "--device", "e2e-laptop"]);
        expect(imported.stdout, imported.stderr).toMatch(/^imported .* into volume tls-in/);
        expect(imported.stderr).toMatch(/created device credential e2e-laptop .*\n.*copying .* over TLS-PSK as device e2e-laptop/);
        await runOk("qemu-img", ["compare", "-f", "raw", "-F", "raw", image.path, gateway.uri("tls-in")]);
        const copy = path.join(work, "tls-out.img");
        // Held by another device (a plaintext client here is "local"): the export refuses to take it over.
        const holder = await connectNbd(gateway.nbdPort, "tls-in");
        await holder.read(0, 4096);
        const refused = await runCli(["volume", "export", "tls-in", copy, "--device", "e2e-laptop"]);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/volume tls-in is attached by local since .* exporting would take it over; .* or pass --take-over/);
        await holder.close();
        await waitFor(
          "the holder's lease to be given back",
          async () => (((await listVolumes(gateway)).find((v) => v.name === "tls-in") as { lease?: unknown } | undefined)?.lease === null ? true : undefined),
          {
            timeoutMs: 30_000,
          },
        );
        // The credential made by the import, in this machine's config folder, is reused: no second one.
        const exported = await runCli(["volume", "export", "tls-in", copy, "--device", "e2e-laptop"]);
        expect(exported.code, exported.stderr).toBe(0);
        expect(exported.stderr).not.toMatch(/created device credential/);
        await runOk("qemu-img", ["compare", "-f", "raw", "-F", "raw", image.path, copy]);
      }),
    60_000,
  );
});

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
