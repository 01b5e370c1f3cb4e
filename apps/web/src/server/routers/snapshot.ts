/**
 * Snapshots of a volume (docs/snapshots-design.md): list with what each holds, take one, delete one.
 * Cloning makes a volume, so it is `volume.clone`.
 */
import { createSnapshot, createSnapshotInput, deleteSnapshot, listSnapshots, listSnapshotsInput, snapshotInput } from "@stratus/control";
import { authedProcedure, router } from "../trpc";

export const snapshotRouter = router({
  list: authedProcedure.input(listSnapshotsInput).query(({ ctx, input }) => listSnapshots(ctx.service, input)),
  // An attached volume's holder commits first: the snapshot is what clients had written and flushed.
  create: authedProcedure.input(createSnapshotInput).mutation(({ ctx, input }) => createSnapshot(ctx.service, input)),
  delete: authedProcedure.input(snapshotInput).mutation(({ ctx, input }) => deleteSnapshot(ctx.service, input)),
});
