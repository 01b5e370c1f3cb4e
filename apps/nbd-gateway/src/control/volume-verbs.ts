/**
 * Domain verbs for volumes: the one place that decides what creating, listing, unlocking, changing the
 * passphrase of, deleting and recovering a volume means. The REST API (and later tRPC and the workers)
 * validate input, call a verb and map its ServiceError; verbs authorise by owner.
 *
 * Secrets: passphrases arrive as arguments and go only into the key functions; data keys go only into
 * the KeyRing. Neither is logged, stored, put in a job payload or echoed in an error.
 */
import {
  findVolumeByName,
  findVolumeById,
  insertRecoveredVolume,
  insertVolume,
  listVolumes as listVolumeRows,
  newId,
  setVolumeState,
  updateVolumeKeySlots,
  deleteVolumeRow,
  DbError,
  type Database,
  type StoredKeySlot,
  type VolumeDurability,
  type VolumeRow,
} from "@stratus/db";
import {
  changePassphrase,
  createKeySlots,
  listVolumeHeaders,
  readLatestManifest,
  SealedCodec,
  StorageError,
  unlockDataKey,
  writeVolumeHeader,
  type KeySlot,
  type ObjectStore,
  type ScryptCost,
  type VolumeStats,
} from "@stratus/storage";
import type { Logger } from "pino";
import type { VolumeEngines } from "../engine/volume-engines";
import type { JobQueues } from "../jobs/queues";
import type { KeyRing } from "../keys/key-ring";
import { ServiceError } from "./service-error";

export interface ControlContext {
  database: Database;
  /** The store as the engines see it (retrying). */
  store: ObjectStore;
  engines: VolumeEngines;
  keys: KeyRing;
  queues: JobQueues;
  logger: Logger;
  /** The caller; every verb acts only on this owner's volumes. */
  ownerId: string;
  /** scrypt cost for new passphrase slots (tests lower it). */
  kdf?: ScryptCost;
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
  durability: string;
  compression: string;
  createdAt: string;
  /** An auto-unlock slot for this gateway's master key exists. */
  autoUnlock: boolean;
  hasPassphrase: boolean;
  /** Its data key is in this gateway's memory (it can be attached). */
  unlocked: boolean;
  /** Present while the volume is open in this gateway. */
  attached: { connections: number } | null;
  epoch: number;
  lastCommitAt: string | null;
  /** Engine figures; null while the volume is not open here. */
  storedBytes: number | null;
  compressionRatio: number | null;
  dirtyBytes: number | null;
  cachedBytes: number | null;
  queueDepth: number | null;
}

export interface CreateVolumeInput {
  name: string;
  sizeBytes: number;
  chunkSize?: number;
  durability?: VolumeDurability;
  passphrase?: string;
  /** Default true; false needs a passphrase. */
  autoUnlock?: boolean;
}

export async function createVolume(ctx: ControlContext, input: CreateVolumeInput): Promise<VolumeView> {
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
  const autoUnlock = input.autoUnlock ?? true;
  if (!autoUnlock && !input.passphrase) {
    throw new ServiceError("BAD_REQUEST", "a volume without auto-unlock needs a passphrase", { field: "passphrase" });
  }
  if (input.passphrase !== undefined && input.passphrase.length === 0) {
    throw new ServiceError("BAD_REQUEST", "the passphrase is empty", { field: "passphrase" });
  }
  // The id comes first: key slots and every object are bound to it.
  const id = newId("volume");
  const { dataKey, slots } = await createKeySlots({
    volumeId: id,
    passphrase: input.passphrase,
    masterKey: autoUnlock ? ctx.keys.masterKey : undefined,
    kdf: ctx.kdf,
  });
  let row: VolumeRow;
  try {
    row = await insertVolume(ctx.database.db, {
      id,
      ownerId: ctx.ownerId,
      name: input.name,
      sizeBytes: input.sizeBytes,
      chunkSize,
      durability: input.durability ?? "local",
      compression: "zstd",
      keySlots: slots as unknown as StoredKeySlot[],
    });
  } catch (error) {
    throw translateDbError(error);
  }
  try {
    await writeHeader(ctx.store, row, slots);
  } catch (error) {
    // No volume without its header: the bucket alone must be enough to recover it.
    await deleteVolumeRow(ctx.database.db, row.id).catch(() => undefined);
    throw error;
  }
  ctx.keys.remember(row.id, dataKey);
  ctx.logger.info({ volumeId: row.id, volume: row.name, sizeBytes: row.sizeBytes, durability: row.durability, autoUnlock }, "volume created");
  return view(ctx, row, undefined);
}

export async function listVolumes(ctx: ControlContext): Promise<VolumeView[]> {
  const rows = await listVolumeRows(ctx.database.db, ctx.ownerId);
  return Promise.all(rows.map(async (row) => view(ctx, row, await ctx.engines.get(row.id))));
}

/** Puts the volume's data key in this gateway's memory, so it can be attached. */
export async function unlockVolume(ctx: ControlContext, input: { name: string; passphrase: string }): Promise<VolumeView> {
  const row = await findOwnedVolume(ctx, input.name);
  try {
    await ctx.keys.unlock(row.id, slotsOf(row), input.passphrase);
  } catch (error) {
    throw translateKeyError(error, row.name);
  }
  ctx.logger.info({ volumeId: row.id, volume: row.name }, "volume unlocked");
  return view(ctx, row, await ctx.engines.get(row.id));
}

/**
 * Replaces the passphrase: rewrites the key slots in the row and the bucket's volume header, never a
 * chunk object. The old passphrase is required when the volume has one; a volume with only
 * auto-unlock gets its first passphrase from the key the gateway can unlock itself.
 */
export async function changeVolumePassphrase(
  ctx: ControlContext,
  input: { name: string; oldPassphrase?: string; newPassphrase: string },
): Promise<VolumeView> {
  const row = await findOwnedVolume(ctx, input.name);
  const slots = slotsOf(row);
  if (!input.newPassphrase) throw new ServiceError("BAD_REQUEST", "the new passphrase is empty", { field: "newPassphrase" });
  const hasPassphrase = slots.some((slot) => slot.kind === "passphrase");
  let newSlots: KeySlot[];
  try {
    if (hasPassphrase) {
      if (!input.oldPassphrase) throw new ServiceError("BAD_REQUEST", "the current passphrase is required", { field: "oldPassphrase" });
      newSlots = await changePassphrase({ volumeId: row.id, slots, oldPassphrase: input.oldPassphrase, newPassphrase: input.newPassphrase, kdf: ctx.kdf });
    } else {
      const dataKey = await ctx.keys.dataKeyFor(row.id, slots);
      newSlots = await changePassphrase({ volumeId: row.id, slots, dataKey, newPassphrase: input.newPassphrase, kdf: ctx.kdf });
    }
  } catch (error) {
    throw translateKeyError(error, row.name);
  }
  const updated = await updateVolumeKeySlots(ctx.database.db, row.id, newSlots as unknown as StoredKeySlot[]);
  await writeHeader(ctx.store, updated, newSlots);
  ctx.logger.info({ volumeId: row.id, volume: row.name }, "volume passphrase changed");
  return view(ctx, updated, await ctx.engines.get(row.id));
}

export interface DeleteStarted {
  volumeId: string;
  jobId: string;
}

/** Marks the volume deleting and queues the job that removes its objects, then its row. */
export async function deleteVolume(ctx: ControlContext, input: { name: string }): Promise<DeleteStarted> {
  const row = await findOwnedVolume(ctx, input.name);
  const engine = await ctx.engines.get(row.id);
  if (engine) {
    throw new ServiceError(
      "CONFLICT",
      `volume ${row.name} is attached (${engine.connections} connection${engine.connections === 1 ? "" : "s"}); disconnect its clients first`,
    );
  }
  // Marked first so no client can attach while its objects go; a crash leaves a visible 'deleting'
  // volume that a repeated delete finishes.
  await setVolumeState(ctx.database.db, row.id, "deleting");
  ctx.keys.forget(row.id);
  const jobId = await ctx.queues.addDeleteVolume({ volumeId: row.id });
  ctx.logger.info({ volumeId: row.id, volume: row.name, jobId }, "volume delete queued");
  return { volumeId: row.id, jobId };
}

export interface DeleteProgress {
  volumeId: string;
  state: "waiting" | "active" | "completed" | "failed";
  objectsDeleted: number;
  error?: string;
}

export async function volumeDeleteProgress(ctx: ControlContext, input: { volumeId: string }): Promise<DeleteProgress> {
  const row = await findVolumeById(ctx.database.db, input.volumeId);
  if (row && row.ownerId !== ctx.ownerId) throw new ServiceError("NOT_FOUND", `no volume ${input.volumeId}`);
  const job = await ctx.queues.deleteVolume.getJob(`del.${input.volumeId}`);
  const progress = job?.progress as { objectsDeleted?: number } | undefined;
  const objectsDeleted = job?.returnvalue?.objectsDeleted ?? progress?.objectsDeleted ?? 0;
  if (!row) return { volumeId: input.volumeId, state: "completed", objectsDeleted };
  if (!job) throw new ServiceError("NOT_FOUND", `volume ${row.name} is not being deleted`);
  const state = await job.getState();
  if (state === "failed") return { volumeId: row.id, state, objectsDeleted, error: job.failedReason };
  return { volumeId: row.id, state: state === "active" ? "active" : state === "completed" ? "completed" : "waiting", objectsDeleted };
}

export interface RecoverOutcome {
  recovered: Array<{ id: string; name: string; epoch: number; chunks: number }>;
  skipped: Array<{ id: string; name: string; reason: string }>;
}

/**
 * Rebuilds volume rows from the bucket alone: each volume header, unlocked with the master key or the
 * given passphrase, and its newest manifest that decodes. Volumes already in the database are skipped.
 */
export async function recoverVolumes(ctx: ControlContext, input: { passphrase?: string }): Promise<RecoverOutcome> {
  const outcome: RecoverOutcome = { recovered: [], skipped: [] };
  const headers = await listVolumeHeaders(ctx.store, {
    onInvalid: (key) => outcome.skipped.push({ id: key, name: "?", reason: "the volume header does not decode" }),
  });
  for (const header of headers) {
    const skip = (reason: string) => outcome.skipped.push({ id: header.volumeId, name: header.name, reason });
    if (await findVolumeById(ctx.database.db, header.volumeId)) {
      skip("already in the database");
      continue;
    }
    let dataKey: Buffer;
    try {
      dataKey = await unlockDataKey({ volumeId: header.volumeId, slots: header.slots, masterKey: ctx.keys.masterKey, passphrase: input.passphrase });
    } catch (error) {
      if (error instanceof StorageError && error.code === "EPERM") {
        skip(input.passphrase ? "neither the master key nor the passphrase unlocks it" : "locked: give its passphrase");
        continue;
      }
      throw error;
    }
    const codec = new SealedCodec({ dataKey, compression: header.compression });
    const manifest = await readLatestManifest(ctx.store, codec, header.volumeId, {
      onInvalid: (key) => ctx.logger.warn({ key }, "skipping a manifest that does not decode"),
    });
    const chunks = manifest ? [...manifest.chunks].map(([index, c]) => [index, c.generation, c.storedSize] as const) : [];
    try {
      await insertRecoveredVolume(ctx.database.db, {
        id: header.volumeId,
        ownerId: ctx.ownerId,
        name: header.name,
        sizeBytes: header.sizeBytes,
        chunkSize: header.chunkSize,
        durability: header.durability,
        compression: header.compression,
        keySlots: header.slots as unknown as StoredKeySlot[],
        epoch: manifest?.epoch ?? 0,
        chunks,
      });
    } catch (error) {
      if (error instanceof DbError && (error.code === "VOLUME_EXISTS" || error.code === "INVALID_ARGUMENT")) {
        skip(error.message);
        continue;
      }
      throw error;
    }
    ctx.keys.remember(header.volumeId, dataKey);
    outcome.recovered.push({ id: header.volumeId, name: header.name, epoch: manifest?.epoch ?? 0, chunks: chunks.length });
    ctx.logger.info({ volumeId: header.volumeId, volume: header.name, epoch: manifest?.epoch ?? 0, chunks: chunks.length }, "volume recovered from the bucket");
  }
  return outcome;
}

async function findOwnedVolume(ctx: ControlContext, name: string): Promise<VolumeRow> {
  const row = await findVolumeByName(ctx.database.db, name, ctx.ownerId);
  if (!row || row.state !== "active") throw new ServiceError("NOT_FOUND", `no volume named ${name}`);
  return row;
}

function slotsOf(row: VolumeRow): KeySlot[] {
  return row.keySlots as unknown as KeySlot[];
}

function writeHeader(store: ObjectStore, row: VolumeRow, slots: KeySlot[]): Promise<void> {
  return writeVolumeHeader(store, {
    format: 1,
    volumeId: row.id,
    name: row.name,
    sizeBytes: row.sizeBytes,
    chunkSize: row.chunkSize,
    compression: row.compression,
    durability: row.durability,
    createdAt: row.createdAt.toISOString(),
    slots,
  });
}

function view(ctx: ControlContext, row: VolumeRow, engine: { volume: { stats(): VolumeStats }; connections: number } | undefined): VolumeView {
  const stats = engine?.volume.stats();
  const slots = slotsOf(row);
  const lastCommitAt = stats?.lastCommitAt !== undefined ? new Date(stats.lastCommitAt) : row.lastCommitAt;
  return {
    id: row.id,
    name: row.name,
    sizeBytes: row.sizeBytes,
    chunkSize: row.chunkSize,
    state: row.state,
    durability: row.durability,
    compression: row.compression,
    createdAt: row.createdAt.toISOString(),
    autoUnlock: slots.some((slot) => slot.kind === "master"),
    hasPassphrase: slots.some((slot) => slot.kind === "passphrase"),
    unlocked: ctx.keys.isUnlocked(row.id),
    attached: engine ? { connections: engine.connections } : null,
    epoch: stats ? stats.epoch : row.commitEpoch,
    lastCommitAt: lastCommitAt ? lastCommitAt.toISOString() : null,
    storedBytes: stats ? stats.storedBytes : null,
    compressionRatio: stats ? stats.compressionRatio : null,
    dirtyBytes: stats ? stats.dirtyBytes : null,
    cachedBytes: stats ? stats.cachedBytes : null,
    queueDepth: stats ? stats.queueDepth : null,
  };
}

function translateKeyError(error: unknown, name: string): unknown {
  if (error instanceof StorageError && error.code === "EPERM") {
    return new ServiceError("FORBIDDEN", `wrong passphrase for volume ${name}`, { field: "passphrase", cause: error });
  }
  if (error instanceof StorageError && error.code === "EINVAL") return new ServiceError("BAD_REQUEST", error.message, { cause: error });
  return error;
}

function translateDbError(error: unknown): unknown {
  if (error instanceof DbError) {
    if (error.code === "VOLUME_EXISTS") return new ServiceError("CONFLICT", error.message, { field: "name", cause: error });
    if (error.code === "INVALID_VOLUME_NAME") return new ServiceError("BAD_REQUEST", error.message, { field: "name", cause: error });
  }
  return error;
}
