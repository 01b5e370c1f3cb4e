/**
 * Domain verbs for volumes: the one place that decides what creating, listing and deleting a
 * volume means. The REST API (and later tRPC and the workers) validate input, call a verb and map
 * its ServiceError; verbs authorise by owner.
 */
import {
  deleteVolumeRow,
  findVolumeByName,
  insertVolume,
  listVolumes as listVolumeRows,
  setVolumeState,
  DbError,
  type Database,
  type VolumeRow,
} from "@stratus/db";
import { deleteVolumeObjects, type ObjectStore } from "@stratus/storage";
import type { Logger } from "pino";
import type { VolumeEngines } from "../engine/volume-engines";
import { ServiceError } from "./service-error";

export interface ControlContext {
  database: Database;
  store: ObjectStore;
  engines: VolumeEngines;
  logger: Logger;
  /** The caller; every verb acts only on this owner's volumes. */
  ownerId: string;
}

export const MIN_CHUNK_SIZE = 64 * 1024;
export const MAX_CHUNK_SIZE = 64 * 2 ** 20;
export const DEFAULT_CHUNK_SIZE = 2 ** 20;
/** 4 PiB: offsets stay exact in a JavaScript number, and chunk numbers fit the key's 16 hex digits. */
export const MAX_VOLUME_SIZE = 4 * 2 ** 50;

export interface VolumeView {
  id: string;
  name: string;
  sizeBytes: number;
  chunkSize: number;
  state: string;
  createdAt: string;
  /** Present while the volume is open in this gateway. */
  attached: { connections: number } | null;
  storedBytes: number | null;
  dirtyBytes: number | null;
  epoch: number;
}

export async function createVolume(
  ctx: ControlContext,
  input: { name: string; sizeBytes: number; chunkSize?: number },
): Promise<VolumeView> {
  const chunkSize = input.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(Math.log2(chunkSize)) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new ServiceError("BAD_REQUEST", "chunk size must be a power of two from 64K to 64M", { field: "chunkSize" });
  }
  if (!Number.isSafeInteger(input.sizeBytes) || input.sizeBytes <= 0 || input.sizeBytes % 512 !== 0) {
    throw new ServiceError("BAD_REQUEST", "size must be a positive multiple of 512 bytes", { field: "size" });
  }
  if (input.sizeBytes > MAX_VOLUME_SIZE) {
    throw new ServiceError("BAD_REQUEST", "size must be at most 4P", { field: "size" });
  }
  try {
    const row = await insertVolume(ctx.database.db, {
      ownerId: ctx.ownerId,
      name: input.name,
      sizeBytes: input.sizeBytes,
      chunkSize,
    });
    ctx.logger.info({ volumeId: row.id, volume: row.name, sizeBytes: row.sizeBytes }, "volume created");
    return view(row, undefined);
  } catch (error) {
    throw translateDbError(error);
  }
}

export async function listVolumes(ctx: ControlContext): Promise<VolumeView[]> {
  const rows = await listVolumeRows(ctx.database.db, ctx.ownerId);
  return Promise.all(rows.map(async (row) => view(row, await ctx.engines.get(row.id))));
}

export async function deleteVolume(ctx: ControlContext, input: { name: string }): Promise<void> {
  const row = await findOwnedVolume(ctx, input.name);
  const engine = await ctx.engines.get(row.id);
  if (engine) {
    throw new ServiceError(
      "CONFLICT",
      `volume ${row.name} is attached (${engine.connections} connection${engine.connections === 1 ? "" : "s"}); disconnect its clients first`,
    );
  }
  // Marked first so no client can attach while its objects go; the row goes last so a crash in
  // between leaves a visible 'deleting' volume that a repeated delete finishes.
  await setVolumeState(ctx.database.db, row.id, "deleting");
  await deleteVolumeObjects(ctx.store, row.id);
  await deleteVolumeRow(ctx.database.db, row.id);
  ctx.logger.info({ volumeId: row.id, volume: row.name }, "volume deleted");
}

async function findOwnedVolume(ctx: ControlContext, name: string): Promise<VolumeRow> {
  const row = await findVolumeByName(ctx.database.db, name, ctx.ownerId);
  if (!row) throw new ServiceError("NOT_FOUND", `no volume named ${name}`);
  return row;
}

function view(row: VolumeRow, engine: { volume: { stats(): VolumeStatsLike }; connections: number } | undefined): VolumeView {
  const stats = engine?.volume.stats();
  return {
    id: row.id,
    name: row.name,
    sizeBytes: row.sizeBytes,
    chunkSize: row.chunkSize,
    state: row.state,
    createdAt: row.createdAt.toISOString(),
    attached: engine ? { connections: engine.connections } : null,
    storedBytes: stats ? stats.storedBytes : null,
    dirtyBytes: stats ? stats.dirtyBytes : null,
    epoch: stats ? stats.epoch : row.commitEpoch,
  };
}

interface VolumeStatsLike {
  storedBytes: number;
  dirtyBytes: number;
  epoch: number;
}

function translateDbError(error: unknown): unknown {
  if (error instanceof DbError) {
    if (error.code === "VOLUME_EXISTS") return new ServiceError("CONFLICT", error.message, { field: "name", cause: error });
    if (error.code === "INVALID_VOLUME_NAME") return new ServiceError("BAD_REQUEST", error.message, { field: "name", cause: error });
  }
  return error;
}
