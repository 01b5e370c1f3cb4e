/**
 * The gc and delete-volume workers of this gateway, and the timer that schedules GC: every
 * `gcIntervalMs` for each volume open here, and once after a delete or a close. Upload workers live in
 * chunk-uploader.ts (they need the waiting callers).
 */
import { Worker, type Job } from "bullmq";
import { DbError, type Db } from "@stratus/db";
import type { ObjectStore } from "@stratus/storage";
import type { Logger } from "../logger";
import { throttledErrorLog } from "../redis/error-log";
import { deleteVolumeCompletely } from "./delete-volume";
import { collectVolumeGarbage } from "./gc";
import {
  deleteVolumePayloadSchema,
  gcPayloadSchema,
  QUEUE_NAMES,
  retryDelayMs,
  type DeleteVolumePayload,
  type DeleteVolumeProgress,
  type DeleteVolumeResult,
  type GcPayload,
  type GcResult,
  type JobQueues,
} from "@stratus/control/jobs";

export interface JobWorkersOptions {
  queues: JobQueues;
  db: Db;
  store: ObjectStore;
  graceMs: number;
  /** How often each open volume gets a gc job (default: a tenth of the grace, 10 s to 5 min). */
  gcIntervalMs?: number;
  /** Ids of the volumes open in this gateway. */
  openVolumeIds(): Iterable<string>;
  /** Deletes a deleted volume's local cache (its decrypted data) on this gateway. */
  dropCache?(volumeId: string): void;
  logger: Logger;
}

export class JobWorkers {
  readonly #options: JobWorkersOptions;
  readonly #workers: Worker[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: JobWorkersOptions) {
    this.#options = options;
  }

  start(): void {
    const { queues, logger } = this.#options;
    const common = {
      connection: queues.settings.connection,
      prefix: queues.settings.prefix,
      settings: { backoffStrategy: (attemptsMade: number) => retryDelayMs(attemptsMade) },
    };
    const gc = new Worker<GcPayload, GcResult>(QUEUE_NAMES.gc, (job) => this.#gc(job), { ...common, concurrency: 2 });
    const del = new Worker<DeleteVolumePayload, DeleteVolumeResult>(QUEUE_NAMES.deleteVolume, (job) => this.#delete(job), {
      ...common,
      concurrency: 2,
    });
    for (const worker of [gc, del] as Worker[]) {
      worker.on("failed", (job, error) => logger.warn({ err: error, jobId: job?.id, attempt: job?.attemptsMade }, `${worker.name} job failed`));
      worker.on("error", throttledErrorLog(logger, `${worker.name} worker error`));
      this.#workers.push(worker);
    }
    const grace = this.#options.graceMs;
    const interval = this.#options.gcIntervalMs ?? Math.min(300_000, Math.max(10_000, Math.round(grace / 10)));
    this.#timer = setInterval(() => void this.scheduleGcForOpenVolumes(), interval);
    this.#timer.unref();
  }

  /** Queues a gc job for every volume open here (deduplicated per volume while one waits). */
  async scheduleGcForOpenVolumes(): Promise<void> {
    for (const volumeId of this.#options.openVolumeIds()) await this.scheduleGc(volumeId);
  }

  async scheduleGc(volumeId: string, delayMs = 0): Promise<void> {
    try {
      await this.#options.queues.addGc({ volumeId }, delayMs);
    } catch (error) {
      this.#options.logger.warn({ err: error, volumeId }, "could not queue a gc job");
    }
  }

  /** Stops scheduling and lets running jobs finish. */
  /** Running jobs finish first, unless Redis is gone: a close cannot complete then, so it is not awaited. */
  async close(options: { redisGone?: boolean } = {}): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    if (options.redisGone) for (const worker of this.#workers) void worker.close(true).catch(() => undefined);
    else await Promise.all(this.#workers.map((worker) => worker.close()));
  }

  async #gc(job: Job<GcPayload, GcResult>): Promise<GcResult> {
    const { volumeId } = gcPayloadSchema.parse(job.data);
    const { db, store, graceMs, logger } = this.#options;
    try {
      const result = await collectVolumeGarbage({ db, store, volumeId, graceMs });
      if (result.garbageDeleted + result.orphansDeleted > 0) logger.info({ volumeId, ...result }, "gc deleted objects");
      return result;
    } catch (error) {
      // A volume deleted meanwhile has nothing left to collect.
      if (error instanceof DbError && error.code === "VOLUME_NOT_FOUND") return { garbageDeleted: 0, orphansDeleted: 0 };
      throw error;
    }
  }

  async #delete(job: Job<DeleteVolumePayload, DeleteVolumeResult>): Promise<DeleteVolumeResult> {
    const { volumeId } = deleteVolumePayloadSchema.parse(job.data);
    const { db, store, logger } = this.#options;
    const objectsDeleted = await deleteVolumeCompletely({
      db,
      store,
      volumeId,
      onProgress: (count) => job.updateProgress({ objectsDeleted: count } satisfies DeleteVolumeProgress),
    });
    this.#options.dropCache?.(volumeId);
    logger.info({ volumeId, objectsDeleted }, "volume deleted");
    return { objectsDeleted };
  }
}
