/**
 * Acceptance 1 of issue 2: real NBD clients against a running `stratus gateway` process.
 * One gateway (embedded default: PGlite + local bucket directory) serves every test in the file; each
 * test makes its own volume, so they do not depend on one another's data.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startS3TestServer, type S3TestServer } from "@stratus/storage/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createVolume,
  describeLogs,
  folderUsage,
  listExports,
  makeSparseImage,
  mapExport,
  MiB,
  qemuIo,
  runFio,
  runOk,
  s3GatewayEnv,
  sha256File,
  startGateway,
  volumeBucketUsage,
  type Gateway,
  type SparseImage,
} from "../harness";
import { applyOps, patternReads, type IoOp } from "./io-model";

const IMAGE_SIZE = 256 * MiB;

let gateway: Gateway;
let work: string;
let image: SparseImage;
let imageSha: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-clients-"));
  // Seed 2 gives 53 runs, 131 MiB of them random data and the rest holes.
  image = await makeSparseImage(path.join(work, "source.img"), { size: IMAGE_SIZE, seed: 2, dataFraction: 0.4 });
  imageSha = await sha256File(image.path);
  gateway = await startGateway();
});

afterAll(async () => {
  await gateway?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Adds the gateway's recent log lines to a failure, which is where the server side of it shows. */
async function withLogs<T>(body: () => Promise<T>, server: () => Gateway | undefined = () => gateway): Promise<T> {
  try {
    return await body();
  } catch (err) {
    const logs = server()?.logs();
    if (err instanceof Error && logs) err.message += `\n${describeLogs(logs)}`;
    throw err;
  }
}

describe("real NBD clients against the gateway (local bucket directory)", () => {
  it("nbdinfo --list shows the volumes created with the CLI, attachable at once", () =>
    withLogs(async () => {
      await createVolume(gateway, "list-a", { size: "64M" });
      await createVolume(gateway, "list-b", { size: "1G", chunkSize: "4M" });

      const exports = await listExports(`nbd://127.0.0.1:${gateway.nbdPort}`);
      const sizes = Object.fromEntries(exports.map((e) => [e["export-name"], e["export-size"]]));
      expect(sizes["list-a"]).toBe(64 * MiB);
      expect(sizes["list-b"]).toBe(1024 * MiB);
    }));

  it("nbdinfo --map reports a fresh volume as one hole", () =>
    withLogs(async () => {
      await createVolume(gateway, "fresh", { size: "1G" });
      const map = await mapExport(gateway.uri("fresh"));
      expect(map).toEqual([{ offset: 0, length: 1024 * MiB, type: 3, description: "hole,zero" }]);
    }));

  it("qemu-img convert -n of a sparse random image, then qemu-img compare: equal", () =>
    withLogs(async () => {
      await createVolume(gateway, "qemu-img", { size: "256M" });
      const uri = gateway.uri("qemu-img");
      await runOk("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", image.path, uri], { timeoutMs: 120_000 });
      await runOk("qemu-img", ["compare", "-f", "raw", "-F", "raw", image.path, uri], { timeoutMs: 120_000 });

      // Every random-data run must be reported allocated (a hole there would read as zeros).
      const map = await mapExport(uri);
      for (const run of image.runs.filter((r) => r.data)) {
        const holes = map.filter((e) => e.type & 1 && e.offset < run.offset + run.length && run.offset < e.offset + e.length);
        expect(holes, `data run at ${run.offset}`).toEqual([]);
      }
    }));

  it("qemu-io aio write/read, discard and write -z patterns verify, also from a new connection", () =>
    withLogs(async () => {
      const size = 64 * MiB;
      await createVolume(gateway, "qemu-io", { size: "64M", chunkSize: "1M" });
      const uri = gateway.uri("qemu-io");
      const model = new Uint8Array(size);

      // In flight together (non-overlapping), unaligned and across chunk boundaries, to the last byte.
      const writes: Extract<IoOp, { op: "write" }>[] = [
        { op: "write", offset: 0, length: 3 * MiB, pattern: 0x11 },
        { op: "write", offset: 3 * MiB, length: MiB, pattern: 0x22 },
        { op: "write", offset: 5 * MiB - 512, length: MiB + 1024, pattern: 0x33 },
        { op: "write", offset: 8 * MiB - 1, length: 3, pattern: 0x44 },
        { op: "write", offset: 10 * MiB + 12345, length: 2 * MiB + 777, pattern: 0x45 },
        { op: "write", offset: size - MiB, length: MiB, pattern: 0x55 },
      ];
      applyOps(model, writes);
      await qemuIo(uri, [
        ...writes.map((w) => `aio_write -P ${w.pattern} ${w.offset} ${w.length}`),
        "aio_flush",
        ...patternReads(model, 0, 16 * MiB, "aio_read"),
        "aio_flush",
      ]);

      // One at a time: each changes what the next reads.
      const changes: IoOp[] = [
        { op: "discard", offset: MiB, length: MiB }, // a whole chunk
        { op: "discard", offset: 3 * MiB + 4096, length: 8192 }, // inside a chunk
        { op: "zero", offset: 3 * MiB + 65536, length: 65536 }, // write -z: allocated zeros
        { op: "zero", offset: 2 * MiB + 512, length: 4096, unmap: true }, // write -z -u: may punch
        { op: "zero", offset: 10 * MiB, length: 2 * MiB }, // two whole chunks, one written across
        { op: "write", offset: MiB, length: 4096, pattern: 0x66 }, // rewrite a trimmed chunk
      ];
      const commands: string[] = [];
      for (const change of changes) {
        applyOps(model, [change]);
        commands.push(toQemuIo(change), "flush", ...patternReads(model, 0, 16 * MiB, "read"));
      }
      await qemuIo(uri, commands);

      // A second client process sees the same bytes (read back over a new connection).
      await qemuIo(uri, patternReads(model, 0, size, "read"));
    }));

  it("nbdcopy in and out is byte-identical, and the bucket holds about the data written", () =>
    withLogs(async () => {
      const volume = await createVolume(gateway, "nbdcopy", { size: "256M", chunkSize: "1M" });
      const uri = gateway.uri("nbdcopy");
      // --flush: the bytes are committed to the bucket when nbdcopy exits.
      await runOk("nbdcopy", ["--flush", image.path, uri], { timeoutMs: 120_000 });
      const copy = path.join(work, "nbdcopy-out.img");
      await runOk("nbdcopy", [uri, copy], { timeoutMs: 120_000 });
      expect(await sha256File(copy)).toBe(imageSha);
      await rm(copy);

      const stored = await volumeBucketUsage(gateway, volume.id);
      expect(image.dataBytes).toBeLessThan(0.6 * IMAGE_SIZE); // the test means something only if so
      expect(stored.bytes).toBeGreaterThanOrEqual(0.9 * image.dataBytes);
      expect(stored.bytes).toBeLessThanOrEqual(1.1 * image.dataBytes);
    }));

  it("fio randwrite + verify=crc32c, iodepth 32, 4 connections each on its own region", () =>
    withLogs(async () => {
      await createVolume(gateway, "fio", { size: "256M" });
      const jobs = await runFio(
        [
          "--name=randwrite-verify",
          "--ioengine=nbd",
          `--uri=${gateway.uri("fio")}`,
          "--rw=randwrite",
          "--bs=4k",
          "--iodepth=32",
          "--numjobs=4", // the nbd engine opens one connection per job
          "--size=32M",
          "--offset_increment=64M",
          "--verify=crc32c",
          "--do_verify=1",
          "--verify_fatal=1",
          "--randseed=20",
        ],
        path.join(work, "fio.json"),
        180_000,
      );
      expect(jobs).toHaveLength(4);
      for (const job of jobs) {
        expect(job.error).toBe(0);
        expect(job.write.io_bytes).toBe(32 * MiB);
        expect(job.read.io_bytes).toBe(32 * MiB); // the verify pass read every block back
      }
    }));
});

describe("the same client against a gateway whose bucket is an S3 server", () => {
  let s3: S3TestServer | undefined;
  let s3Gateway: Gateway | undefined;

  beforeAll(async () => {
    s3 = await startS3TestServer({ bucket: "stratus-e2e" });
    s3Gateway = await startGateway({ env: s3GatewayEnv(s3) });
  });

  afterAll(async () => {
    await s3Gateway?.dispose();
    await s3?.stop();
  });

  it("qemu-img convert -n, then qemu-img compare: equal, also after a restart; nothing lands in the local bucket folder", () =>
    withLogs(
      async () => {
        const gw = s3Gateway!;
        await createVolume(gw, "s3-qemu-img", { size: "256M" });
        const uri = gw.uri("s3-qemu-img");
        await runOk("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", image.path, uri], { timeoutMs: 180_000 });
        await runOk("qemu-img", ["compare", "-f", "raw", "-F", "raw", image.path, uri], { timeoutMs: 180_000 });
        expect((await folderUsage(gw.bucketDir)).files).toBe(0);

        // A new gateway process has only the S3 bucket (and its database) to read the bytes from.
        expect(await gw.restart()).toMatchObject({ code: 0, killed: false });
        await runOk("qemu-img", ["compare", "-f", "raw", "-F", "raw", image.path, gw.uri("s3-qemu-img")], { timeoutMs: 180_000 });
      },
      () => s3Gateway,
    ));
});

function toQemuIo(op: IoOp): string {
  switch (op.op) {
    case "write":
      return `write -P ${op.pattern} ${op.offset} ${op.length}`;
    case "discard":
      return `discard ${op.offset} ${op.length}`;
    case "zero":
      return `write -z${op.unmap ? " -u" : ""} ${op.offset} ${op.length}`;
  }
}
