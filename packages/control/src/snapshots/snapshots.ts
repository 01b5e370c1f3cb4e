/**
 * Snapshots (docs/snapshots-design.md): pin a committed epoch of a volume under a name, serve it
 * read-only as export VOL@NAME, list what each holds, delete one. Creating one writes no chunk
 * object: it copies the map in the database and seals a copy of it into the bucket (s/), so
 * `volume recover --from-bucket` brings it back. An attached volume's holder commits first.
 */
import {
  createSnapshotRow,
  DbError,
  deleteSnapshotRow,
  findSnapshotByName,
  listSnapshots as listSnapshotRows,
  loadSnapshotMap,
  newId,
  type SnapshotWithFigures,
  type VolumeRow,
  type VolumeSnapshotRow,
} from "@stratus/db";
import { deleteSnapshotManifest, SealedCodec, writeSnapshotManifest, type Compression } from "@stratus/storage";
import * as z from "zod";
import { recordActivity } from "../activity/activity";
import { requireWrite, type ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { formatSize } from "../units";
import { existingVolumeName, volumeNameInput } from "../volumes/inputs";
import { findOwnedVolume } from "../volumes/lookup";
import { parseInput } from "../volumes/volumes";
import { commitThroughHolder } from "./holder-commit";
import { volumeDataKey } from "./volume-keys";

/** Snapshot names follow volume names' rules; `@` separates the two in an export name. */
export const snapshotNameInput = volumeNameInput;

export const snapshotInput = z.object({ name: existingVolumeName, snapshot: snapshotNameInput });
export const createSnapshotInput = snapshotInput;
export const listSnapshotsInput = z.object({ name: existingVolumeName });

export interface SnapshotView {
  id: string;
  name: string;
  volumeId: string;
  volumeName: string;
  /** The read-only NBD export that serves it. */
  exportName: string;
  epoch: number;
  sizeBytes: number;
  createdAt: string;
  /** Chunk objects it names and their stored bytes. */
  chunks: number;
  storedBytes: number;
  /** Stored bytes only it names: what deleting it frees (after the GC grace). */
  exclusiveBytes: number;
}

export function snapshotView(volume: VolumeRow, row: VolumeSnapshotRow | SnapshotWithFigures): SnapshotView {
  const figures = "chunks" in row ? row : { chunks: 0, storedBytes: 0, exclusiveBytes: 0 };
  return {
    id: row.id,
    name: row.name,
    volumeId: volume.id,
    volumeName: volume.name,
    exportName: `${volume.name}@${row.name}`,
    epoch: row.epoch,
    sizeBytes: row.sizeBytes,
    createdAt: row.createdAt.toISOString(),
    chunks: figures.chunks,
    storedBytes: figures.storedBytes,
    exclusiveBytes: figures.exclusiveBytes,
  };
}

export async function createSnapshot(ctx: ServiceContext, rawInput: z.input<typeof createSnapshotInput>): Promise<SnapshotView> {
  requireWrite(ctx);
  const input = parseInput(createSnapshotInput, rawInput);
  const { runtime } = ctx;
  const db = runtime.database.db;
  const volume = await findOwnedVolume(ctx, input.name);
  if (await findSnapshotByName(db, volume.id, input.snapshot)) {
    throw new ServiceError("CONFLICT", `volume ${volume.name} already has a snapshot named ${input.snapshot}`, { field: "snapshot" });
  }
  // The key first: a locked volume fails before its holder is disturbed.
  const dataKey = await volumeDataKey(runtime, volume);
  let row: VolumeSnapshotRow;
  try {
    await commitThroughHolder(runtime, volume);
    try {
      row = await createSnapshotRow(db, { id: newId("snapshot"), volumeId: volume.id, name: input.snapshot });
    } catch (error) {
      if (error instanceof DbError && error.code === "SNAPSHOT_EXISTS") throw new ServiceError("CONFLICT", error.message, { field: "snapshot", cause: error });
      throw error;
    }
    const codec = new SealedCodec({ dataKey, compression: volume.compression as Compression });
    try {
      await writeSnapshotManifest(runtime.store, codec, volume.id, {
        id: row.id,
        name: row.name,
        createdAt: row.createdAt.toISOString(),
        sizeBytes: row.sizeBytes,
        epoch: row.epoch,
        chunks: await loadSnapshotMap(db, row.id),
      });
    } catch (error) {
      // No snapshot the bucket does not know: recover from the bucket must find every one.
      await deleteSnapshotRow(db, row.id).catch(() => undefined);
      throw error;
    }
  } finally {
    dataKey.fill(0);
  }
  await recordActivity(ctx, {
    ownerId: volume.ownerId,
    volumeId: volume.id,
    volumeName: volume.name,
    action: "snapshot.create",
    detail: { snapshot: row.name, epoch: row.epoch },
  });
  runtime.logger.info({ volumeId: volume.id, volume: volume.name, snapshotId: row.id, snapshot: row.name, epoch: row.epoch }, "snapshot created");
  const listed = (await listSnapshotRows(db, volume.id)).find((candidate) => candidate.id === row.id);
  return snapshotView(volume, listed ?? row);
}

export async function listSnapshots(ctx: ServiceContext, rawInput: z.input<typeof listSnapshotsInput>): Promise<SnapshotView[]> {
  const input = parseInput(listSnapshotsInput, rawInput);
  const volume = await findOwnedVolume(ctx, input.name);
  return (await listSnapshotRows(ctx.runtime.database.db, volume.id)).map((row) => snapshotView(volume, row));
}

/** The snapshot of one of the actor's volumes, or NOT_FOUND. */
export async function findOwnedSnapshot(
  ctx: ServiceContext,
  volumeName: string,
  snapshotName: string,
): Promise<{ volume: VolumeRow; snapshot: VolumeSnapshotRow }> {
  const volume = await findOwnedVolume(ctx, volumeName);
  const snapshot = await findSnapshotByName(ctx.runtime.database.db, volume.id, snapshotName);
  if (!snapshot) throw new ServiceError("NOT_FOUND", `volume ${volume.name} has no snapshot named ${snapshotName}`);
  return { volume, snapshot };
}

/**
 * Deletes a snapshot: its map rows and bucket manifest at once; the objects only it named after the
 * GC grace (a reader of its export may still be fetching). Clones made from it keep working: they
 * name the objects they read themselves.
 */
export async function deleteSnapshot(ctx: ServiceContext, rawInput: z.input<typeof snapshotInput>): Promise<{ message: string }> {
  requireWrite(ctx);
  const input = parseInput(snapshotInput, rawInput);
  const { runtime } = ctx;
  const { volume, snapshot } = await findOwnedSnapshot(ctx, input.name, input.snapshot);
  const freed = (await listSnapshotRows(runtime.database.db, volume.id)).find((row) => row.id === snapshot.id)?.exclusiveBytes ?? 0;
  await deleteSnapshotRow(runtime.database.db, snapshot.id);
  await deleteSnapshotManifest(runtime.store, volume.id, snapshot.id);
  await runtime.queues.addGc({ volumeId: volume.id }, runtime.config.gcGraceMs + 1_000);
  await recordActivity(ctx, {
    ownerId: volume.ownerId,
    volumeId: volume.id,
    volumeName: volume.name,
    action: "snapshot.delete",
    detail: { snapshot: snapshot.name },
  });
  runtime.logger.info({ volumeId: volume.id, snapshotId: snapshot.id, snapshot: snapshot.name }, "snapshot deleted");
  return { message: `deleted snapshot ${volume.name}@${snapshot.name}; the ${formatSize(freed)} only it held are freed after the GC grace` };
}
