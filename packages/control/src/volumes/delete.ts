/**
 * Deleting a volume: mark it 'deleting' (nothing attaches it any more), drop its unlock grant, and queue
 * the delete-volume job that removes its objects and then its row. Progress is read from the job, found
 * by the volume's name through the activity log once the row is gone.
 */
import { findLatestActivityByName, findVolumeById, setVolumeState } from "@stratus/db";
import * as z from "zod";
import { recordActivity } from "../activity/activity";
import { requireWrite, type ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { jobIds } from "../jobs/queues";
import { deleteUnlockGrant } from "../keys/unlock-grants";
import { requireDetached } from "./attached";
import { deleteProgressInput, deleteVolumeInput } from "./inputs";
import { findOwnedVolume } from "./lookup";
import { parseInput } from "./volumes";

export interface DeleteStarted {
  volumeId: string;
  jobId: string;
}

export interface DeleteProgress {
  volumeId: string;
  state: "waiting" | "active" | "completed" | "failed";
  objectsDeleted: number;
  error?: string;
}

export async function deleteVolume(ctx: ServiceContext, rawInput: z.input<typeof deleteVolumeInput>): Promise<DeleteStarted> {
  requireWrite(ctx);
  const input = parseInput(deleteVolumeInput, rawInput);
  const { runtime } = ctx;
  const row = await findOwnedVolume(ctx, input.name, { includeDeleting: true });
  if (input.confirm !== undefined && input.confirm !== row.name) {
    throw new ServiceError("BAD_REQUEST", `type the volume name (${row.name}) to confirm`, { field: "confirm" });
  }
  await requireDetached(ctx, row, "deleting it");
  // Marked first so no client can attach while its objects go; a crash leaves a visible 'deleting'
  // volume that a repeated delete finishes.
  if (row.state !== "deleting") await setVolumeState(runtime.database.db, row.id, "deleting");
  await deleteUnlockGrant(runtime.redis, runtime.config.prefix, row.id);
  const jobId = await runtime.queues.addDeleteVolume({ volumeId: row.id });
  await recordActivity(ctx, { ownerId: row.ownerId, volumeId: row.id, volumeName: row.name, action: "volume.delete" });
  runtime.logger.info({ volumeId: row.id, volume: row.name, jobId }, "volume delete queued");
  return { volumeId: row.id, jobId };
}

export async function volumeDeleteProgress(ctx: ServiceContext, rawInput: z.input<typeof deleteProgressInput>): Promise<DeleteProgress> {
  const { name } = parseInput(deleteProgressInput, rawInput);
  const db = ctx.runtime.database.db;
  // The owner's volume by this name (while its row exists), else the one they deleted last by this name.
  let volumeId: string | undefined;
  try {
    volumeId = (await findOwnedVolume(ctx, name, { includeDeleting: true })).id;
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error;
    volumeId = (await findLatestActivityByName(db, ctx.actor.userId, name, "volume.delete"))?.volumeId ?? undefined;
  }
  if (!volumeId) throw new ServiceError("NOT_FOUND", `no volume named ${name} is being deleted`);
  const row = await findVolumeById(db, volumeId);
  if (row && row.ownerId !== ctx.actor.userId) throw new ServiceError("NOT_FOUND", `no volume named ${name} is being deleted`);
  if (row && row.state !== "deleting") throw new ServiceError("NOT_FOUND", `volume ${name} is not being deleted`);
  const job = await ctx.runtime.queues.deleteVolume.getJob(jobIds.deleteVolume({ volumeId }));
  const progress = job?.progress as { objectsDeleted?: number } | undefined;
  const objectsDeleted = job?.returnvalue?.objectsDeleted ?? progress?.objectsDeleted ?? 0;
  if (!row) return { volumeId, state: "completed", objectsDeleted };
  if (!job) return { volumeId, state: "waiting", objectsDeleted: 0 };
  const state = await job.getState();
  if (state === "failed") return { volumeId, state, objectsDeleted, error: job.failedReason };
  return { volumeId, state: state === "active" ? "active" : state === "completed" ? "completed" : "waiting", objectsDeleted };
}
