/**
 * Verbs on orphan sets: the uncommitted data a gateway kept aside when another holder took a volume's
 * lease (never committed). List them, export one as a raw image of the volume (only the process whose
 * gateway holds the folder can read it: the embedded default, or the CLI on that gateway's host), and
 * discard one (the row is marked, the holding gateway deletes the folder on a Redis notice or at start).
 */
import path from "node:path";
import type { Readable } from "node:stream";
import { existsSync } from "node:fs";
import {
  findOrphanSet,
  findVolumeById,
  listOrphanSets,
  listOwnerOrphanSets,
  markOrphanSetDiscarded,
  markOrphanSetExported,
  type OrphanSetRow,
  type VolumeRow,
} from "@stratus/db";
import { dirtyImageStream } from "@stratus/storage";
import * as z from "zod";
import { recordActivity } from "../activity/activity";
import { requireWrite, type Runtime, type ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { volumeByName } from "../volumes/inputs";
import { findOwnedVolume } from "../volumes/lookup";
import { parseInput } from "../volumes/volumes";
import { publishOrphanMessage } from "./orphan-channel";

/** Where orphan folders live under a gateway's cache directory (apps/nbd-gateway's ORPHANS_DIR). */
export const ORPHANS_FOLDER = "orphans";

export interface OrphanSetView {
  id: string;
  volumeId: string;
  volumeName: string;
  /** The gateway whose disk holds the data. */
  gatewayId: string;
  fencingToken: number;
  /** Bytes of chunk files kept (dirty and clean), and how many chunks were never committed. */
  bytes: number;
  dirtyChunks: number;
  reason: string;
  orphanedAt: string;
  lastExportedAt: string | null;
  /** This process holds the folder: an export downloads from here. */
  exportable: boolean;
  /** What to run on the holding gateway's host to get the file (works anywhere the CLI reaches this API too). */
  exportCommand: string;
}

export const orphanSetInput = z.object({ id: z.string().regex(/^orp_[1-9A-HJ-NP-Za-km-z]{20}$/, "not an orphan set id") });

function folderOf(runtime: Runtime, row: OrphanSetRow): string | undefined {
  const local = runtime.localGateway;
  if (local === undefined || local.gatewayId !== row.gatewayId) return undefined;
  const dir = path.join(local.cacheDir, ORPHANS_FOLDER, row.dirName);
  return existsSync(dir) ? dir : undefined;
}

function view(runtime: Runtime, row: OrphanSetRow, volumeName: string): OrphanSetView {
  return {
    id: row.id,
    volumeId: row.volumeId,
    volumeName,
    gatewayId: row.gatewayId,
    fencingToken: row.fencingToken,
    bytes: row.bytes,
    dirtyChunks: row.dirtyChunks,
    reason: row.reason,
    orphanedAt: row.orphanedAt.toISOString(),
    lastExportedAt: row.lastExportedAt?.toISOString() ?? null,
    exportable: folderOf(runtime, row) !== undefined,
    exportCommand: `npx stratus orphans export ${row.id} --out ${volumeName}-orphan-${row.fencingToken}.img`,
  };
}

/** A volume's orphan sets, newest first. */
export async function listVolumeOrphanSets(ctx: ServiceContext, input: { name: string }): Promise<OrphanSetView[]> {
  const { name } = parseInput(volumeByName, input);
  const row = await findOwnedVolume(ctx, name);
  return (await listOrphanSets(ctx.runtime.database.db, row.id)).map((set) => view(ctx.runtime, set, row.name));
}

/** Every orphan set of the actor's volumes, newest first. */
export async function listAllOrphanSets(ctx: ServiceContext): Promise<OrphanSetView[]> {
  return (await listOwnerOrphanSets(ctx.runtime.database.db, ctx.actor.userId)).map((set) => view(ctx.runtime, set, set.volumeName));
}

/** The set and its volume when the actor owns it and it is not discarded; else NOT_FOUND. */
async function findOwnedSet(ctx: ServiceContext, id: string): Promise<{ set: OrphanSetRow; volume: VolumeRow }> {
  const db = ctx.runtime.database.db;
  const set = await findOrphanSet(db, id);
  const volume = set && set.discardedAt === null ? await findVolumeById(db, set.volumeId) : undefined;
  if (!set || !volume || volume.ownerId !== ctx.actor.userId) throw new ServiceError("NOT_FOUND", `no orphan set ${id}`);
  return { set, volume };
}

export async function getOrphanSet(
  ctx: ServiceContext,
  input: { id: string },
): Promise<OrphanSetView & { sizeBytes: number; chunkSize: number; dirName: string }> {
  const { id } = parseInput(orphanSetInput, input);
  const { set, volume } = await findOwnedSet(ctx, id);
  return { ...view(ctx.runtime, set, volume.name), sizeBytes: volume.sizeBytes, chunkSize: volume.chunkSize, dirName: set.dirName };
}

/** Marks the set discarded and tells its gateway to delete the folder. */
export async function discardOrphanSet(ctx: ServiceContext, input: { id: string }): Promise<{ id: string; discarded: true }> {
  requireWrite(ctx);
  const { id } = parseInput(orphanSetInput, input);
  const { runtime } = ctx;
  const { set, volume } = await findOwnedSet(ctx, id);
  const marked = await markOrphanSetDiscarded(runtime.database.db, id, { by: ctx.actor.userId, now: new Date() });
  if (!marked) throw new ServiceError("NOT_FOUND", `no orphan set ${id}`);
  // A lost notice costs only time: the gateway deletes discarded sets' folders at its next start.
  await publishOrphanMessage(runtime.redis, runtime.config.prefix, { kind: "discard", orphanSetId: id, gatewayId: set.gatewayId, dirName: set.dirName }).catch(
    (error: unknown) =>
      runtime.logger.warn({ err: error, orphanSetId: id }, "could not tell the gateway to delete a discarded orphan set; it does at its next start"),
  );
  await recordActivity(ctx, {
    ownerId: volume.ownerId,
    volumeId: volume.id,
    volumeName: volume.name,
    action: "orphans.discard",
    detail: { orphanSetId: id, gatewayId: set.gatewayId, bytes: set.bytes, dirtyChunks: set.dirtyChunks },
  });
  runtime.logger.info({ volumeId: volume.id, orphanSetId: id, gatewayId: set.gatewayId }, "orphan set discarded");
  return { id, discarded: true };
}

export interface OrphanExport {
  fileName: string;
  /** The image's length: the volume's size. */
  sizeBytes: number;
  stream: Readable;
}

/**
 * The set's uncommitted writes as a raw image of the volume (zeros where the set has nothing). Only
 * where this process's gateway holds the folder; elsewhere CONFLICT says which gateway and what to run
 * there. Write scope: the image is the volume's decrypted data.
 */
export async function exportOrphanSet(ctx: ServiceContext, input: { id: string }): Promise<OrphanExport> {
  requireWrite(ctx);
  const { id } = parseInput(orphanSetInput, input);
  const { runtime } = ctx;
  const { set, volume } = await findOwnedSet(ctx, id);
  const dir = folderOf(runtime, set);
  if (dir === undefined) {
    throw new ServiceError(
      "CONFLICT",
      `orphan set ${id} is on the disk of gateway ${set.gatewayId}, not this server's: run \`npx stratus orphans export ${id} --out FILE\` on that gateway's host`,
    );
  }
  const stream = dirtyImageStream(dir, { sizeBytes: volume.sizeBytes, chunkSize: volume.chunkSize });
  await markOrphanSetExported(runtime.database.db, id, new Date());
  await recordActivity(ctx, { ownerId: volume.ownerId, volumeId: volume.id, volumeName: volume.name, action: "orphans.export", detail: { orphanSetId: id } });
  return { fileName: `${volume.name}-orphan-${set.fencingToken}.img`, sizeBytes: volume.sizeBytes, stream };
}
