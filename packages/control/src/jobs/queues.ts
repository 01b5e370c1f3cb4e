/**
 * Every BullMQ queue of the gateway, its payload schema and its job options: the one module that says
 * what travels through Redis. Payloads name things (volume id, commit id, chunk index, generation) and
 * never carry chunk data, passphrases or keys; the worker looks the rest up in this process.
 *
 * Queues live under the deployment's prefix (STRATUS_QUEUE_PREFIX), shared by its gateways and web
 * processes; only the upload queue has a prefix per gateway (uploadPrefix), since an upload job must
 * run in the process whose engine holds the frozen chunk.
 */
import { Queue, type ConnectionOptions, type JobsOptions } from "bullmq";
import * as z from "zod";

export const QUEUE_NAMES = { upload: "upload", gc: "gc", deleteVolume: "delete-volume", importVolume: "import-volume" } as const;
export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

const volumeId = z.string().regex(/^vol_[1-9A-HJ-NP-Za-km-z]{20}$/, "not a volume id");
const chunkNumber = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const uploadPayloadSchema = z.strictObject({
  volumeId,
  /** The engine's commit (freeze) this chunk belongs to; a commit that is gone makes the job a no-op. */
  commitId: z.string().regex(/^[A-Za-z0-9_:.-]{1,200}$/, "not a commit id"),
  index: chunkNumber,
  generation: chunkNumber,
});
export type UploadPayload = z.infer<typeof uploadPayloadSchema>;

export const gcPayloadSchema = z.strictObject({ volumeId });
export type GcPayload = z.infer<typeof gcPayloadSchema>;

export const deleteVolumePayloadSchema = z.strictObject({ volumeId });
export type DeleteVolumePayload = z.infer<typeof deleteVolumePayloadSchema>;

/** The source (a URL that may be presigned, S3 credentials) is not here: it waits sealed in Redis (volumes/import-source.ts). */
export const importVolumePayloadSchema = z.strictObject({ volumeId });
export type ImportVolumePayload = z.infer<typeof importVolumePayloadSchema>;

export interface UploadResult {
  outcome: "uploaded" | "skipped";
  storedSize?: number;
}
export interface GcResult {
  garbageDeleted: number;
  orphansDeleted: number;
}
export interface DeleteVolumeResult {
  objectsDeleted: number;
}
/** job.progress of a delete-volume job while it runs. */
export interface DeleteVolumeProgress {
  objectsDeleted: number;
}

export interface ImportVolumeResult {
  bytesCopied: number;
  format: "raw" | "qcow2";
}
/** job.progress of an import-volume job while it runs. */
export interface ImportVolumeProgress {
  phase: "downloading" | "converting" | "committing";
  /** Source bytes read so far, of `bytesTotal` (the image file's size). */
  bytesDone: number;
  bytesTotal: number;
  /** Over the current phase, bytes per second; 0 until measurable. */
  rateBytesPerSecond: number;
  /** Seconds until the current phase ends, when a rate is known. */
  etaSeconds?: number;
  /** The source without a query string or credentials, for the page. */
  source: string;
}

/** Retry delays: 200 ms doubling up to 30 s, with ±20% jitter so a fleet does not retry in step. */
export const RETRY_BASE_DELAY_MS = 200;
export const RETRY_MAX_DELAY_MS = 30_000;
export function retryDelayMs(attemptsMade: number, random: () => number = Math.random): number {
  const delay = Math.min(RETRY_MAX_DELAY_MS, RETRY_BASE_DELAY_MS * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(delay * (0.8 + 0.4 * random()));
}

/**
 * Many attempts: an object store outage only delays uploads (writes wait behind the dirty limit);
 * at 30 s per attempt this is more than a day before an upload is given up.
 */
const MANY_ATTEMPTS = 5_000;

const JOB_OPTIONS: Record<QueueName, JobsOptions> = {
  upload: { attempts: MANY_ATTEMPTS, backoff: { type: "capped" }, removeOnComplete: true, removeOnFail: 1000 },
  gc: { attempts: 20, backoff: { type: "capped" }, removeOnComplete: true, removeOnFail: 100 },
  "delete-volume": { attempts: MANY_ATTEMPTS, backoff: { type: "capped" }, removeOnComplete: 100, removeOnFail: 100 },
  // One attempt: a failed or interrupted import deletes its volume rather than copying over a partial one.
  "import-volume": { attempts: 1, removeOnComplete: 100, removeOnFail: 100 },
};

/** BullMQ job ids may not contain ':'; these are deterministic so an enqueue can be deduplicated. */
export const jobIds = {
  upload: (p: UploadPayload) => `up.${p.volumeId}.${p.commitId.replaceAll(":", "~")}.${p.index}.${p.generation}`,
  gc: (p: GcPayload) => `gc.${p.volumeId}`,
  deleteVolume: (p: DeleteVolumePayload) => `del.${p.volumeId}`,
  importVolume: (p: ImportVolumePayload) => `imp.${p.volumeId}`,
};

export interface QueueSettings {
  connection: ConnectionOptions;
  prefix: string;
  /** The upload queue's prefix: this gateway's own (default `prefix`). */
  uploadPrefix?: string;
}

/** Where a gateway's upload queue lives: under the deployment's prefix, one per data directory. */
export function uploadQueuePrefix(prefix: string, gatewayKey: string): string {
  return `${prefix}:gw-${gatewayKey}`;
}

/** The producer side of every queue, with payloads checked before they reach Redis. */
export class JobQueues {
  readonly upload: Queue<UploadPayload, UploadResult>;
  readonly gc: Queue<GcPayload, GcResult>;
  readonly deleteVolume: Queue<DeleteVolumePayload, DeleteVolumeResult>;
  readonly importVolume: Queue<ImportVolumePayload, ImportVolumeResult>;

  /** `onError`: connection errors (otherwise BullMQ prints each one to stderr). */
  constructor(
    readonly settings: QueueSettings,
    onError?: (error: Error) => void,
  ) {
    const make = <P, R>(name: QueueName) => {
      const prefix = name === QUEUE_NAMES.upload ? (settings.uploadPrefix ?? settings.prefix) : settings.prefix;
      const queue = new Queue<P, R>(name, { connection: settings.connection, prefix, defaultJobOptions: JOB_OPTIONS[name] });
      if (onError) queue.on("error", onError);
      return queue;
    };
    this.upload = make(QUEUE_NAMES.upload);
    this.gc = make(QUEUE_NAMES.gc);
    this.deleteVolume = make(QUEUE_NAMES.deleteVolume);
    this.importVolume = make(QUEUE_NAMES.importVolume);
  }

  async addUpload(payload: UploadPayload): Promise<string> {
    const data = uploadPayloadSchema.parse(payload);
    const job = await this.upload.add(QUEUE_NAMES.upload, data, { jobId: jobIds.upload(data) });
    return job.id!;
  }

  /** Deduplicated per volume while one is waiting; `delayMs` defers it (e.g. until garbage expires). */
  async addGc(payload: GcPayload, delayMs = 0): Promise<string> {
    const data = gcPayloadSchema.parse(payload);
    const job = await this.gc.add(QUEUE_NAMES.gc, data, { jobId: jobIds.gc(data), delay: delayMs });
    return job.id!;
  }

  async addDeleteVolume(payload: DeleteVolumePayload): Promise<string> {
    const data = deleteVolumePayloadSchema.parse(payload);
    const jobId = jobIds.deleteVolume(data);
    // A finished delete of the same volume id would make add() a no-op: clear it first.
    const previous = await this.deleteVolume.getJob(jobId);
    if (previous && (await previous.isCompleted())) await previous.remove();
    const job = await this.deleteVolume.add(QUEUE_NAMES.deleteVolume, data, { jobId });
    return job.id!;
  }

  async addImportVolume(payload: ImportVolumePayload): Promise<string> {
    const data = importVolumePayloadSchema.parse(payload);
    const job = await this.importVolume.add(QUEUE_NAMES.importVolume, data, { jobId: jobIds.importVolume(data) });
    return job.id!;
  }

  async close(): Promise<void> {
    await Promise.all([this.upload.close(), this.gc.close(), this.deleteVolume.close(), this.importVolume.close()]);
  }
}
