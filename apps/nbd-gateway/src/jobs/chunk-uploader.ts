/**
 * The storage engine's ChunkUploader over BullMQ: one job per frozen chunk, run by this process's
 * worker (the upload queue's prefix is per gateway, so completions are tracked in-process by job id) and
 * retried with capped backoff, so a store outage only delays the commit. A job whose volume is not
 * open here or whose commit is gone completes as "skipped": the cache journal re-queues its chunks.
 * After closeWorker(), upload() calls the volume directly, so final flushes still reach the bucket.
 */
import { Worker, type Job } from "bullmq";
import { StorageError } from "@stratus/storage";
import type { Logger } from "../logger";
import { throttledErrorLog } from "../redis/error-log";
import { jobIds, QUEUE_NAMES, retryDelayMs, uploadPayloadSchema, type JobQueues, type UploadPayload, type UploadResult } from "@stratus/control/jobs";

export interface UploadTask {
  volumeId: string;
  commitId: string;
  index: number;
  generation: number;
}

/** What the worker needs of an open volume. */
export interface UploadTarget {
  uploadFrozenChunk(commitId: string, index: number, generation: number): Promise<{ storedSize: number }>;
}

export interface BullMqChunkUploaderOptions {
  queues: JobQueues;
  /** The open volume with this id in this process, if any. */
  resolveVolume(volumeId: string): UploadTarget | undefined;
  concurrency: number;
  logger: Logger;
}

interface Waiter {
  resolve(result: { storedSize: number }): void;
  reject(error: unknown): void;
}

/** True when an upload failed because its commit (or engine) is gone, not because the store failed. */
export function isCommitGone(error: unknown): boolean {
  return error instanceof StorageError && (error.code === "ENOTFOUND" || error.code === "ESHUTDOWN");
}

export class BullMqChunkUploader {
  readonly #options: BullMqChunkUploaderOptions;
  /** Job id -> its task and everyone waiting for it. */
  readonly #waiters = new Map<string, { task: UploadTask; list: Waiter[] }>();
  #worker: Worker<UploadPayload, UploadResult> | undefined;
  #workerClosed = false;
  #pending = 0;

  constructor(options: BullMqChunkUploaderOptions) {
    this.#options = options;
  }

  /** Starts this process's upload worker. */
  start(): void {
    const { queues, concurrency, logger } = this.#options;
    const worker = new Worker<UploadPayload, UploadResult>(QUEUE_NAMES.upload, (job) => this.#process(job), {
      connection: queues.settings.connection,
      prefix: queues.settings.uploadPrefix ?? queues.settings.prefix,
      concurrency,
      settings: { backoffStrategy: (attemptsMade: number) => retryDelayMs(attemptsMade) },
    });
    worker.on("failed", (job, error) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1);
      logger.warn({ err: error, jobId: job.id, attempt: job.attemptsMade, final }, final ? "chunk upload gave up" : "chunk upload failed; will retry");
      if (final) this.#settle(job.id!, (w) => w.reject(error));
    });
    worker.on("error", throttledErrorLog(logger, "upload worker error"));
    this.#worker = worker;
  }

  /** Uploads in flight or waiting (the engine's queueDepth is its own; this is the gateway's). */
  get pending(): number {
    return this.#pending;
  }

  upload(task: UploadTask): Promise<{ storedSize: number }> {
    if (this.#workerClosed || !this.#worker) return this.#direct(task);
    const parsed = uploadPayloadSchema.safeParse(task);
    if (!parsed.success) return Promise.reject(new StorageError("EINVAL", `bad upload task: ${parsed.error.issues[0]?.message}`));
    const payload = parsed.data;
    const jobId = jobIds.upload(payload);
    this.#pending += 1;
    const done = new Promise<{ storedSize: number }>((resolve, reject) => {
      const entry = this.#waiters.get(jobId) ?? { task: payload, list: [] };
      entry.list.push({ resolve, reject });
      this.#waiters.set(jobId, entry);
    }).finally(() => (this.#pending -= 1));
    // The waiter is registered before the job exists, so even an instant completion finds it.
    this.#options.queues.addUpload(payload).catch((error: unknown) => this.#settle(jobId, (w) => w.reject(error)));
    return done;
  }

  /**
   * Queues again every upload still waited for: after the private Redis was restarted empty, the jobs
   * it held are gone. A job that still exists keeps its id, so adding it again changes nothing.
   */
  requeuePending(): void {
    if (this.#workerClosed) return;
    for (const [jobId, { task }] of [...this.#waiters]) {
      this.#options.queues.addUpload(task).catch((error: unknown) => this.#settle(jobId, (w) => w.reject(error)));
    }
  }

  /**
   * Stops taking jobs; later uploads run directly in the caller. Running jobs finish first, unless
   * Redis is gone: then the worker is left to its forced close (which cannot complete without Redis)
   * and every waiting upload runs directly at once.
   */
  async closeWorker(options: { redisGone?: boolean } = {}): Promise<void> {
    this.#workerClosed = true;
    if (options.redisGone) void this.#worker?.close(true).catch(() => undefined);
    else await this.#worker?.close();
    // Jobs still queued will not run in this process any more: run their waiters' uploads directly.
    for (const [jobId, { task }] of [...this.#waiters]) this.#settleWith(jobId, this.#direct(task));
  }

  async #process(job: Job<UploadPayload, UploadResult>): Promise<UploadResult> {
    const payload = uploadPayloadSchema.parse(job.data);
    const jobId = job.id!;
    const target = this.#options.resolveVolume(payload.volumeId);
    if (!target) {
      // Enqueued by this process but the engine is still opening (a restart re-queues dirty chunks
      // during Volume.open): try again shortly. Otherwise a leftover of a previous run.
      if (this.#waiters.has(jobId)) throw new Error(`volume ${payload.volumeId} is not open yet`);
      return { outcome: "skipped" };
    }
    try {
      const result = await target.uploadFrozenChunk(payload.commitId, payload.index, payload.generation);
      this.#settle(jobId, (w) => w.resolve(result));
      return { outcome: "uploaded", storedSize: result.storedSize };
    } catch (error) {
      if (isCommitGone(error)) {
        this.#settle(jobId, (w) => w.reject(error));
        return { outcome: "skipped" };
      }
      throw error;
    }
  }

  async #direct(task: UploadTask): Promise<{ storedSize: number }> {
    const target = this.#options.resolveVolume(task.volumeId);
    if (!target) throw new StorageError("ESHUTDOWN", `volume ${task.volumeId} is not open in this gateway`);
    return target.uploadFrozenChunk(task.commitId, task.index, task.generation);
  }

  #settle(jobId: string, fn: (waiter: Waiter) => void): void {
    const entry = this.#waiters.get(jobId);
    if (!entry) return;
    this.#waiters.delete(jobId);
    for (const waiter of entry.list) fn(waiter);
  }

  #settleWith(jobId: string, result: Promise<{ storedSize: number }>): void {
    result.then(
      (value) => this.#settle(jobId, (w) => w.resolve(value)),
      (error: unknown) => this.#settle(jobId, (w) => w.reject(error)),
    );
  }
}
