/**
 * Importing a disk image from an http(s) URL or an S3 object as a job (the dashboard's "Import from
 * URL", REST `POST /api/v1/volumes/import`, `stratus volume import --server-side`).
 *
 * The verb reads the image's first bytes to learn its format and size, creates the volume sized to it
 * in state 'importing' (listed, never attachable), seals the source into Redis (import-source.ts) and
 * queues an import-volume job, which a gateway runs (apps/nbd-gateway/src/jobs/import-volume.ts). The
 * job makes the volume 'active' once its data is committed. As with the CLI's import, an import that
 * fails or is cancelled deletes its volume: no half-imported volume is ever attachable.
 */
import { findLatestActivityByName, findVolumeById, moveVolumeState, setVolumeState } from "@stratus/db";
import type { Redis } from "ioredis";
import * as z from "zod";
import { recordActivity } from "../activity/activity";
import { requireWrite, type ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { jobIds, type ImportVolumeProgress } from "../jobs/queues";
import { detectImageFormat, IMAGE_HEAD_BYTES, ImageFormatError } from "./import-format";
import {
  dropImportSource,
  ImportSourceError,
  importSourceSchema,
  readSourceHead,
  s3SourceSchema,
  shownSource,
  storeImportSource,
  type ImportSource,
} from "./import-source";
import { existingVolumeName, newPassphraseInput, sizeInput, volumeNameInput } from "./inputs";
import { findOwnedVolume } from "./lookup";
import { createVolume, parseInput } from "./volumes";
import type { VolumeView } from "./view";

export const importVolumeInput = z.object({
  name: volumeNameInput,
  /** http(s)://… (a presigned URL too) or s3://bucket/key. */
  url: z.string().min(1, "the URL is empty").max(8000),
  /** For an s3:// URL: where and as whom (absent: AWS with no credentials, public objects only). */
  s3: s3SourceSchema.omit({ bucket: true, key: true }).optional(),
  chunkSize: sizeInput.optional(),
  durability: z.enum(["local", "cloud"]).optional(),
  /** Also protect the volume with a passphrase (it keeps its auto-unlock slot, so the job can write it). */
  passphrase: newPassphraseInput.optional(),
});
export type ImportVolumeInput = z.input<typeof importVolumeInput>;

export interface ImportStarted {
  volume: VolumeView;
  jobId: string;
  format: "raw" | "qcow2";
  source: string;
}

export interface ImportProgressView {
  volumeId: string;
  state: "waiting" | "active" | "completed" | "failed" | "cancelled";
  progress?: ImportVolumeProgress;
  error?: string;
}

/** How long the verb waits for the image's first bytes before giving up. */
const HEAD_TIMEOUT_MS = 30_000;

export const cancelImportKey = (prefix: string, volumeId: string) => `${prefix}:import-cancel:${volumeId}`;

function sourceOf(input: z.output<typeof importVolumeInput>): ImportSource {
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/i.exec(input.url);
  const parsed = s3
    ? importSourceSchema.safeParse({ kind: "s3", s3: { ...input.s3, bucket: s3[1], key: s3[2] } })
    : importSourceSchema.safeParse({ kind: "url", url: input.url });
  if (!parsed.success) throw new ServiceError("BAD_REQUEST", "url: an http(s) URL or s3://bucket/key", { field: "url" });
  return parsed.data;
}

export async function importVolume(ctx: ServiceContext, rawInput: ImportVolumeInput): Promise<ImportStarted> {
  requireWrite(ctx);
  const input = parseInput(importVolumeInput, rawInput);
  const { runtime } = ctx;
  const source = sourceOf(input);
  const shown = shownSource(source);
  let image;
  try {
    const { head, totalBytes } = await readSourceHead(source, IMAGE_HEAD_BYTES, AbortSignal.timeout(HEAD_TIMEOUT_MS));
    image = detectImageFormat(head, totalBytes);
  } catch (error) {
    if (error instanceof ImportSourceError || error instanceof ImageFormatError)
      throw new ServiceError("BAD_REQUEST", error.message, { field: "url", cause: error });
    throw error;
  }
  const size = Math.max(512, Math.ceil(image.virtualSize / 512) * 512);
  const volume = await createVolume(
    ctx,
    { name: input.name, size, chunkSize: input.chunkSize, durability: input.durability, passphrase: input.passphrase, autoUnlock: true },
    { state: "importing" },
  );
  let jobId: string;
  try {
    await storeImportSource(runtime.redis, runtime.config.prefix, runtime.masterKey.key, volume.id, source);
    jobId = await runtime.queues.addImportVolume({ volumeId: volume.id });
  } catch (error) {
    await abandonImport(ctx, volume.id);
    throw error;
  }
  await recordActivity(ctx, {
    ownerId: ctx.actor.userId,
    volumeId: volume.id,
    volumeName: volume.name,
    action: "volume.import",
    detail: { source: shown, format: image.format, sizeBytes: size },
  });
  runtime.logger.info({ volumeId: volume.id, volume: volume.name, source: shown, format: image.format, sizeBytes: size, jobId }, "volume import queued");
  return { volume, jobId, format: image.format, source: shown };
}

/** Marks the volume for deletion and queues the delete: a half-imported volume must not stay. */
async function abandonImport(ctx: ServiceContext, volumeId: string): Promise<void> {
  const { runtime } = ctx;
  await dropImportSource(runtime.redis, runtime.config.prefix, volumeId).catch(() => undefined);
  await setVolumeState(runtime.database.db, volumeId, "deleting");
  await runtime.queues.addDeleteVolume({ volumeId });
}

/**
 * Cancels an import: the volume is marked 'deleting' at once. A job still waiting is dropped and the
 * volume deleted here; a running job sees the cancel key, stops its copy, lets go and deletes it.
 */
export async function cancelImport(ctx: ServiceContext, rawInput: { name: string }): Promise<{ volumeId: string }> {
  requireWrite(ctx);
  const { name } = parseInput(z.object({ name: existingVolumeName }), rawInput);
  const { runtime } = ctx;
  const row = await findOwnedVolume(ctx, name, { includeDeleting: true });
  if (!(await moveVolumeState(runtime.database.db, row.id, "importing", "deleting"))) {
    throw new ServiceError("CONFLICT", `volume ${name} is not being imported`);
  }
  await signalCancel(runtime.redis, runtime.config.prefix, row.id);
  const job = await runtime.queues.importVolume.getJob(jobIds.importVolume({ volumeId: row.id }));
  const state = await job?.getState();
  if (state !== "active") {
    await job?.remove().catch(() => undefined);
    await dropImportSource(runtime.redis, runtime.config.prefix, row.id);
    await runtime.queues.addDeleteVolume({ volumeId: row.id });
  }
  await recordActivity(ctx, { ownerId: row.ownerId, volumeId: row.id, volumeName: row.name, action: "volume.import-cancel" });
  runtime.logger.info({ volumeId: row.id, volume: row.name }, "volume import cancelled");
  return { volumeId: row.id };
}

async function signalCancel(redis: Redis, prefix: string, volumeId: string): Promise<void> {
  await redis.set(cancelImportKey(prefix, volumeId), "1", "EX", 24 * 3600);
}

/** The owner's latest import into a volume by this name (the volume may be gone: a failed or cancelled import deletes it). */
export async function volumeImportProgress(ctx: ServiceContext, rawInput: { name: string }): Promise<ImportProgressView> {
  const { name } = parseInput(z.object({ name: existingVolumeName }), rawInput);
  const { runtime } = ctx;
  const db = runtime.database.db;
  const volumeId = (await findLatestActivityByName(db, ctx.actor.userId, name, "volume.import"))?.volumeId ?? undefined;
  if (!volumeId) throw new ServiceError("NOT_FOUND", `no import into a volume named ${name}`);
  const row = await findVolumeById(db, volumeId);
  if (row && row.ownerId !== ctx.actor.userId) throw new ServiceError("NOT_FOUND", `no import into a volume named ${name}`);
  const job = await runtime.queues.importVolume.getJob(jobIds.importVolume({ volumeId }));
  const progress = (job?.progress && typeof job.progress === "object" ? job.progress : undefined) as ImportVolumeProgress | undefined;
  if ((await runtime.redis.exists(cancelImportKey(runtime.config.prefix, volumeId))) === 1) return { volumeId, state: "cancelled", progress };
  const state = await job?.getState();
  if (state === "failed") return { volumeId, state, progress, error: job!.failedReason };
  if (state === "completed" || row?.state === "active") return { volumeId, state: "completed", progress };
  if (!row || row.state === "deleting") return { volumeId, state: "failed", progress, error: "the import did not finish" };
  return { volumeId, state: state === "active" ? "active" : "waiting", progress };
}
