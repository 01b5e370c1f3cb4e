/**
 * The import-volume job (packages/control/src/volumes/import.ts queues it): streams an image from an
 * http(s) URL or S3 into a volume created for it in state 'importing', then makes the volume 'active'.
 *
 * Raw images are written straight into the volume's engine as they arrive, skipping all-zero blocks
 * (they already read as zeros in a new volume). A qcow2 cannot be read from a stream: it is staged in a
 * private folder beside the cache, then nbdcopy reads it through `qemu-nbd --read-only` and writes it
 * over NBD to a one-job listener on loopback whose only export has a random name (the volume itself
 * is never listed to any client while it imports). qemu's curl driver is never used.
 *
 * The source arrives sealed in Redis, read once. An import that fails, is cancelled (the verb marks the
 * volume 'deleting' and sets a cancel key) or was interrupted (a gateway that died mid-copy: the job
 * runs again as a second attempt) deletes its volume through the delete-volume job.
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Worker, type Job } from "bullmq";
import { findVolumeById, listVolumes, moveVolumeState, type Db, type VolumeRow } from "@stratus/db";
import type { BlockDevice } from "@stratus/storage";
import { cancelImportKey } from "@stratus/control";
import { importVolumePayloadSchema, jobIds, QUEUE_NAMES, type ImportVolumePayload, type ImportVolumeResult, type JobQueues } from "@stratus/control/jobs";
import { ImportSourceError, openSourceStream, shownSource, takeImportSource } from "@stratus/control/import-source";
import { detectImageFormat, IMAGE_HEAD_BYTES, ImageFormatError } from "@stratus/control/import-format";
import type { Redis } from "ioredis";
import type { Logger } from "../logger";
import { throttledErrorLog } from "../redis/error-log";
import type { OpenedExport } from "../server/export-registry";
import { createNbdServer } from "../server/nbd-server";
import { nbdCopy } from "../cli/images/nbd-copy";
import { capture, requireTool } from "../cli/images/image-tools";
import { ImportMeter } from "./import-meter";

/** What the worker needs of the engines: open an importing volume as the holder "import". */
export interface ImportEngines {
  openForImport(row: VolumeRow): Promise<OpenedExport>;
}

export interface ImportWorkerOptions {
  queues: JobQueues;
  db: Db;
  redis: Redis;
  prefix: string;
  masterKey: Buffer;
  engines: ImportEngines;
  /** Private folder (0700) where qcow2 images are staged; one file per job, removed after it. */
  stagingDir: string;
  logger: Logger;
  /** How often the cancel key is checked and progress published (default 1 s). */
  tickMs?: number;
}

/** Raw images are written in blocks of this size; an all-zero block is skipped. */
const BLOCK = 1024 * 1024;
const ZERO_RUN = 64 * 1024;
const ZEROS = Buffer.alloc(ZERO_RUN);

/** A failure whose message is fit for the volume page (the job's failedReason). */
class ImportFailure extends Error {}

class ImportCancelled extends ImportFailure {
  constructor() {
    super("the import was cancelled");
  }
}

/** What the page may show: our own sentences and the source's; anything else stays in the log. */
function userReason(error: Error): string {
  if (error instanceof ImportFailure || error instanceof ImportSourceError || error instanceof ImageFormatError) return error.message;
  return "copying into the volume failed (the gateway's log says why)";
}

export class ImportWorker {
  readonly #options: ImportWorkerOptions;
  #worker: Worker | undefined;
  readonly #running = new Set<AbortController>();

  constructor(options: ImportWorkerOptions) {
    this.#options = options;
  }

  start(): void {
    const { queues, logger } = this.#options;
    const worker = new Worker<ImportVolumePayload, ImportVolumeResult>(QUEUE_NAMES.importVolume, (job) => this.#run(job), {
      connection: queues.settings.connection,
      prefix: queues.settings.prefix,
      concurrency: 2,
    });
    worker.on("failed", (job, error) => logger.warn({ jobId: job?.id, reason: error.message }, "import job failed"));
    worker.on("error", throttledErrorLog(logger, "import worker error"));
    this.#worker = worker;
    void this.sweepOrphanedImports().catch((error: unknown) => logger.warn({ err: error }, "could not look for imports whose job is gone"));
  }

  /**
   * Deletes volumes left 'importing' without a job that could finish them: a Redis that started empty
   * (the embedded one keeps nothing across restarts) lost their jobs and sealed sources.
   */
  async sweepOrphanedImports(): Promise<number> {
    const { db, queues, logger } = this.#options;
    let swept = 0;
    for (const row of (await listVolumes(db)).filter((volume) => volume.state === "importing")) {
      const job = await queues.importVolume.getJob(jobIds.importVolume({ volumeId: row.id }));
      const state = await job?.getState();
      if (state !== undefined && state !== "completed" && state !== "failed" && state !== "unknown") continue;
      logger.warn({ volumeId: row.id, volume: row.name }, "an import's job is gone (Redis lost it or it ended unfinished): deleting its volume");
      await this.#abandon(row);
      swept++;
    }
    return swept;
  }

  /** Running imports stop (their volumes are deleted): a stop must not wait for a long download. */
  async close(options: { redisGone?: boolean } = {}): Promise<void> {
    for (const controller of this.#running) controller.abort(new ImportFailure("the gateway running the import stopped"));
    if (options.redisGone) void this.#worker?.close(true).catch(() => undefined);
    else await this.#worker?.close();
  }

  async #run(job: Job<ImportVolumePayload, ImportVolumeResult>): Promise<ImportVolumeResult> {
    const { volumeId } = importVolumePayloadSchema.parse(job.data);
    const { db, redis, prefix, masterKey, logger } = this.#options;
    const row = await findVolumeById(db, volumeId);
    // Cancelled while waiting: the cancel verb already queued its delete.
    if (!row || row.state !== "importing") throw new Error("the volume is no longer waiting for its import");
    if (job.attemptsStarted > 1) {
      await this.#abandon(row);
      throw new Error("the import was interrupted (the gateway running it stopped): the volume was deleted");
    }
    const source = await takeImportSource(redis, prefix, masterKey, volumeId);
    if (!source) {
      await this.#abandon(row);
      throw new Error("the import's source is gone (it expired or Redis lost it): the volume was deleted");
    }
    const controller = new AbortController();
    this.#running.add(controller);
    const shown = shownSource(source);
    const meter = new ImportMeter(shown, (progress) => job.updateProgress(progress));
    const ticker = setInterval(() => {
      void redis.exists(cancelImportKey(prefix, volumeId)).then(
        (n) => n === 1 && controller.abort(new ImportCancelled()),
        () => undefined,
      );
      void meter.publish().catch(() => undefined);
    }, this.#options.tickMs ?? 1_000);
    const log = logger.child({ volumeId, volume: row.name, source: shown, jobId: job.id });
    try {
      const { stream, totalBytes } = await openSourceStream(source, controller.signal);
      const result = await this.#copy(row, stream, totalBytes, meter, controller.signal);
      meter.phase("committing", 0);
      await meter.publish();
      if (!(await moveVolumeState(db, volumeId, "importing", "active"))) throw new ImportCancelled();
      log.info({ format: result.format, bytesCopied: result.bytesCopied }, "volume imported");
      return result;
    } catch (caught) {
      const error = controller.signal.aborted ? (controller.signal.reason as Error) : (caught as Error);
      log.warn({ reason: error.message, err: userReason(error) === error.message ? undefined : error }, "import failed: deleting the volume");
      await this.#abandon(row);
      throw new Error(`${userReason(error)} (volume ${row.name} was deleted)`, { cause: error });
    } finally {
      clearInterval(ticker);
      this.#running.delete(controller);
    }
  }

  /** Detects the format from the first bytes, then copies; every export it opened is released by then. */
  async #copy(row: VolumeRow, stream: Readable, totalBytes: number, meter: ImportMeter, signal: AbortSignal): Promise<ImportVolumeResult> {
    const counted = stream.pipe(meter.counter(totalBytes));
    stream.once("error", (error) => counted.destroy(new ImportSourceError(`the download broke off (${error.message})`, { cause: error })));
    const head = await readHead(counted, IMAGE_HEAD_BYTES);
    const image = detectImageFormat(head.bytes, totalBytes);
    if (image.virtualSize > row.sizeBytes) throw new ImportFailure(`the image grew to ${image.virtualSize} bytes since it was sized`);
    if (image.format === "raw") {
      const opened = await this.#options.engines.openForImport(row);
      try {
        await writeRaw(opened.device, head.bytes, counted, signal);
        await opened.device.flush();
      } finally {
        await opened.release();
      }
      if (meter.bytesDone < totalBytes) throw new ImportFailure(`the source ended after ${meter.bytesDone} of ${totalBytes} bytes`);
      return { bytesCopied: meter.bytesDone, format: "raw" };
    }
    await mkdir(this.#options.stagingDir, { recursive: true, mode: 0o700 });
    const staged = path.join(this.#options.stagingDir, `${row.id}.qcow2`);
    try {
      const file = createWriteStream(staged, { mode: 0o600 });
      file.write(head.bytes);
      await pipeline(counted, file, { signal });
      if (meter.bytesDone < totalBytes) throw new ImportFailure(`the source ended after ${meter.bytesDone} of ${totalBytes} bytes`);
      await capture(await requireTool("qemu-img"), ["check", "-q", "-f", "qcow2", staged]).catch((error: unknown) => {
        throw new ImportFailure("the downloaded qcow2 image is damaged (qemu-img check failed)", { cause: error });
      });
      meter.phase("converting", image.virtualSize);
      await this.#convert(row, staged, meter, signal);
      return { bytesCopied: totalBytes, format: "qcow2" };
    } finally {
      await rm(staged, { force: true });
    }
  }

  /** nbdcopy from `qemu-nbd --read-only` of the staged qcow2 to a one-export NBD listener for this volume. */
  async #convert(row: VolumeRow, staged: string, meter: ImportMeter, signal: AbortSignal): Promise<void> {
    const exportName = `import-${randomBytes(16).toString("hex")}`;
    const server = createNbdServer({
      registry: { list: async () => [], open: async (name) => (name === exportName ? this.#options.engines.openForImport(row) : undefined) },
      logger: this.#options.logger.child({ part: "import-nbd" }),
      maxConnectionsPerAddress: 8,
    });
    const { port } = await server.listen(0, "127.0.0.1");
    try {
      await nbdCopy({
        nbdcopy: await requireTool("nbdcopy"),
        source: { kind: "qemu-nbd", qemuNbd: await requireTool("qemu-nbd"), format: "qcow2", path: staged, readOnly: true },
        destination: { kind: "nbd", uri: `nbd://127.0.0.1:${port}/${exportName}` },
        onProgress: (percent) => meter.converted(percent),
        signal,
      });
    } finally {
      // Ends the connections and releases their exports: the last one closes the engine, which commits.
      await server.close();
    }
  }

  /** Claims the volume for deletion (unless a cancel already did) and queues its delete. */
  async #abandon(row: VolumeRow): Promise<void> {
    const { db, queues, logger } = this.#options;
    try {
      await moveVolumeState(db, row.id, "importing", "deleting");
      await queues.addDeleteVolume({ volumeId: row.id });
    } catch (error) {
      logger.error({ err: error, volumeId: row.id }, "could not queue the delete of a failed import; delete the volume by hand");
    }
  }
}

/** The first `count` bytes of a stream (fewer at its end); the stream goes on after them. */
async function readHead(stream: Readable, count: number): Promise<{ bytes: Buffer }> {
  const parts: Buffer[] = [];
  let length = 0;
  while (length < count) {
    const chunk = (stream.read() as Buffer | null) ?? (await nextChunk(stream));
    if (chunk === null) break;
    parts.push(chunk);
    length += chunk.length;
  }
  const all = Buffer.concat(parts);
  if (all.length > count) stream.unshift(all.subarray(count));
  return { bytes: all.subarray(0, count) };
}

function nextChunk(stream: Readable): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const done = () => {
      cleanup();
      resolve((stream.read() as Buffer | null) ?? null);
    };
    const readable = () => {
      const chunk = stream.read() as Buffer | null;
      if (chunk !== null) {
        cleanup();
        resolve(chunk);
      }
    };
    const failed = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      stream.off("readable", readable);
      stream.off("end", done);
      stream.off("error", failed);
    };
    if (stream.readableEnded) return resolve(null);
    stream.on("readable", readable);
    stream.once("end", done);
    stream.once("error", failed);
  });
}

/** Writes a raw image from the stream at increasing offsets, skipping 64 KiB runs of zeros. */
async function writeRaw(device: BlockDevice, first: Buffer, rest: Readable, signal: AbortSignal): Promise<void> {
  let offset = 0;
  let pending = first;
  const flushBlocks = async (final: boolean) => {
    while (pending.length >= BLOCK || (final && pending.length > 0)) {
      const block = pending.subarray(0, Math.min(BLOCK, pending.length));
      await writeNonZero(device, offset, block);
      offset += block.length;
      pending = pending.subarray(block.length);
    }
  };
  for await (const chunk of rest) {
    if (signal.aborted) throw signal.reason as Error;
    if (offset + pending.length + (chunk as Buffer).length > device.size) throw new ImportFailure("the source is larger than the volume made for it");
    pending = pending.length === 0 ? (chunk as Buffer) : Buffer.concat([pending, chunk as Buffer]);
    await flushBlocks(false);
  }
  await flushBlocks(true);
}

async function writeNonZero(device: BlockDevice, offset: number, block: Buffer): Promise<void> {
  let start = -1;
  for (let at = 0; at < block.length; at += ZERO_RUN) {
    const piece = block.subarray(at, Math.min(at + ZERO_RUN, block.length));
    const zero = piece.equals(ZEROS.subarray(0, piece.length));
    if (!zero && start < 0) start = at;
    if (zero && start >= 0) {
      await device.write(offset + start, block.subarray(start, at));
      start = -1;
    }
  }
  if (start >= 0) await device.write(offset + start, block.subarray(start));
}
