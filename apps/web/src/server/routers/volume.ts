import {
  changePassphraseInput,
  changeVolumePassphrase,
  cloneVolume,
  cloneVolumeInput,
  createVolume,
  createVolumeInput,
  deleteProgressInput,
  deleteVolume,
  deleteVolumeInput,
  detachVolume,
  detachVolumeInput,
  discardOrphanSet,
  getVolume,
  listVolumeActivity,
  listVolumeOrphanSets,
  listVolumes,
  lockVolume,
  orphanSetInput,
  resizeVolume,
  resizeVolumeInput,
  unlockVolume,
  unlockVolumeInput,
  volumeAttachCommands,
  volumeByName,
  volumeDeleteProgress,
  volumeMetrics,
  volumeMetricsInput,
} from "@stratus/control";
import { cancelImport, importVolume, importVolumeInput, volumeImportProgress } from "@stratus/control";
import * as z from "zod";
import { authedProcedure, router } from "../trpc";

export const volumeRouter = router({
  list: authedProcedure.query(({ ctx }) => listVolumes(ctx.service)),
  get: authedProcedure.input(volumeByName).query(({ ctx, input }) => getVolume(ctx.service, input)),
  create: authedProcedure.input(createVolumeInput).mutation(({ ctx, input }) => createVolume(ctx.service, input)),
  resize: authedProcedure.input(resizeVolumeInput).mutation(({ ctx, input }) => resizeVolume(ctx.service, input)),
  changePassphrase: authedProcedure.input(changePassphraseInput).mutation(({ ctx, input }) => changeVolumePassphrase(ctx.service, input)),
  unlock: authedProcedure.input(unlockVolumeInput).mutation(({ ctx, input }) => unlockVolume(ctx.service, input)),
  lock: authedProcedure.input(volumeByName).mutation(({ ctx, input }) => lockVolume(ctx.service, input)),
  // The dashboard always sends the typed confirmation.
  delete: authedProcedure.input(deleteVolumeInput.extend({ confirm: z.string() })).mutation(({ ctx, input }) => deleteVolume(ctx.service, input)),
  // Cooperative detach waits for the holder (up to the handoff timeout); force fences it at once.
  detach: authedProcedure.input(detachVolumeInput).mutation(({ ctx, input }) => detachVolume(ctx.service, input)),
  deleteProgress: authedProcedure.input(deleteProgressInput).query(({ ctx, input }) => volumeDeleteProgress(ctx.service, input)),
  activity: authedProcedure.input(volumeByName).query(({ ctx, input }) => listVolumeActivity(ctx.service, input)),
  metrics: authedProcedure.input(volumeMetricsInput).query(({ ctx, input }) => volumeMetrics(ctx.service, input)),
  attachCommands: authedProcedure.input(volumeByName).query(({ ctx, input }) => volumeAttachCommands(ctx.service, input)),
  // Export is a download (GET /api/v1/orphans/:id/image): a byte stream, not a tRPC answer.
  orphanSets: authedProcedure.input(volumeByName).query(({ ctx, input }) => listVolumeOrphanSets(ctx.service, input)),
  // A new volume whose map starts as the snapshot's (source "VOL@SNAP"): made at once, no data copied.
  clone: authedProcedure.input(cloneVolumeInput).mutation(({ ctx, input }) => cloneVolume(ctx.service, input)),
  discardOrphanSet: authedProcedure.input(orphanSetInput).mutation(({ ctx, input }) => discardOrphanSet(ctx.service, input)),
  // An http(s) URL or S3 object imported by a gateway's job: the volume page polls importProgress.
  import: authedProcedure.input(importVolumeInput).mutation(({ ctx, input }) => importVolume(ctx.service, input)),
  importProgress: authedProcedure.input(volumeByName).query(({ ctx, input }) => volumeImportProgress(ctx.service, input)),
  cancelImport: authedProcedure.input(volumeByName).mutation(({ ctx, input }) => cancelImport(ctx.service, input)),
});
