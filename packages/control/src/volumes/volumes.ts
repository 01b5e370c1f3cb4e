/**
 * Domain verbs for volumes: the one place that decides what creating, listing, resizing, unlocking,
 * locking, changing the passphrase of and deleting a volume means. tRPC, REST (the CLI) and tests call
 * these; every verb authorises by owner and records activity for state changes.
 *
 * Secrets: passphrases arrive as arguments and go only into the key functions; a plain data key lives
 * only in this call, and leaves it only sealed with the master key (an unlock grant in Redis). Neither
 * is logged, stored plain, put in a job payload or echoed in an error.
 */
import { deleteVolumeRow, insertVolume, listVolumes as listVolumeRows, newId, resizeVolumeRow, updateVolumeKeySlots, type VolumeRow } from "@stratus/db";
import { changePassphrase, createKeySlots, unlockDataKey, type KeySlot } from "@stratus/storage";
import { CHUNK_SIZE_RULE, DEFAULT_CHUNK_SIZE, isValidChunkSize } from "@stratus/storage/sizes";
import * as z from "zod";
import { recordActivity } from "../activity/activity";
import { requireWrite, type ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { deleteUnlockGrant, hasUnlockGrant, storeUnlockGrant, volumeLockedChannel } from "../keys/unlock-grants";
import { requireDetached } from "./attached";
import { formatSize } from "../units";
import { changePassphraseInput, createVolumeInput, resizeVolumeInput, unlockVolumeInput, volumeByName, type CreateVolumeInput } from "./inputs";
import { findOwnedVolume, translateDbError, translateKeyError, writeHeader } from "./lookup";
import { slotsOf, volumeView, volumeViews, type VolumeView } from "./view";

/** 4 PiB: offsets stay exact in a JavaScript number, and chunk numbers fit the key's 16 hex digits. */
export const MAX_VOLUME_SIZE = 4 * 2 ** 50;

/** zod errors of verb input become BAD_REQUEST naming the field. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.join(".") || undefined;
  throw new ServiceError("BAD_REQUEST", field ? `${field}: ${issue.message}` : issue.message, { field });
}

function checkSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % 512 !== 0) {
    throw new ServiceError("BAD_REQUEST", "size must be a positive multiple of 512 bytes", { field: "size" });
  }
  if (sizeBytes > MAX_VOLUME_SIZE) throw new ServiceError("BAD_REQUEST", "size must be at most 4P", { field: "size" });
}

/** `options.state` 'importing': made for an import job (volumes/import.ts), not attachable until it finishes. */
export async function createVolume(ctx: ServiceContext, rawInput: CreateVolumeInput, options: { state?: "importing" } = {}): Promise<VolumeView> {
  requireWrite(ctx);
  const input = parseInput(createVolumeInput, rawInput);
  const { runtime } = ctx;
  const chunkSize = input.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!isValidChunkSize(chunkSize)) {
    throw new ServiceError("BAD_REQUEST", `chunk size must be ${CHUNK_SIZE_RULE}`, { field: "chunkSize" });
  }
  checkSize(input.size);
  const autoUnlock = input.autoUnlock ?? true;
  if (!autoUnlock && !input.passphrase) {
    throw new ServiceError("BAD_REQUEST", "a volume without auto-unlock needs a passphrase", { field: "passphrase" });
  }
  // The id comes first: key slots and every object are bound to it.
  const id = newId("volume");
  const { dataKey, slots } = await createKeySlots({
    volumeId: id,
    passphrase: input.passphrase,
    masterKey: autoUnlock ? runtime.masterKey.key : undefined,
    kdf: runtime.config.kdf,
  });
  let row: VolumeRow;
  try {
    row = await insertVolume(runtime.database.db, {
      id,
      ownerId: ctx.actor.userId,
      name: input.name,
      sizeBytes: input.size,
      chunkSize,
      durability: input.durability ?? "local",
      compression: input.compression ?? "zstd",
      keySlots: slots,
      state: options.state,
    });
  } catch (error) {
    throw translateDbError(error);
  }
  try {
    await writeHeader(runtime.store, row, slots);
    // Attachable at once: without auto-unlock the gateway needs the key the creator just gave.
    if (!autoUnlock) await storeUnlockGrant(runtime.redis, runtime.config.prefix, runtime.masterKey.key, row.id, dataKey);
  } catch (error) {
    // No volume without its header: the bucket alone must be enough to recover it.
    await deleteVolumeRow(runtime.database.db, row.id).catch(() => undefined);
    throw error;
  } finally {
    dataKey.fill(0);
  }
  await recordActivity(ctx, {
    ownerId: row.ownerId,
    volumeId: row.id,
    volumeName: row.name,
    action: "volume.create",
    detail: { sizeBytes: row.sizeBytes, chunkSize: row.chunkSize, durability: row.durability, autoUnlock, passphrase: !!input.passphrase },
  });
  runtime.logger.info({ volumeId: row.id, volume: row.name, sizeBytes: row.sizeBytes, durability: row.durability, autoUnlock }, "volume created");
  return volumeView(runtime, row);
}

export async function listVolumes(ctx: ServiceContext): Promise<VolumeView[]> {
  const rows = await listVolumeRows(ctx.runtime.database.db, ctx.actor.userId);
  return volumeViews(ctx.runtime, rows);
}

export async function getVolume(ctx: ServiceContext, input: { name: string }): Promise<VolumeView> {
  const { name } = parseInput(volumeByName, input);
  return volumeView(ctx.runtime, await findOwnedVolume(ctx, name, { includeDeleting: true }));
}

export interface ResizeOutcome {
  volume: VolumeView;
  /** Chunk objects past the new end that a GC job deletes after the grace period (shrink only). */
  chunksFreed: number;
  /**
   * A grow while a device holds the volume: its clients keep the size they negotiated until they
   * reconnect. NBD has no way for a server to announce a new size (docs/control-plane-design.md).
   */
  reconnectNeeded: boolean;
}

/** What a grow of an attached volume means for its clients, in the words the CLI and dashboard show. */
export const GROW_RECONNECT_NOTICE = "attached clients see the new size after they disconnect and reconnect";

/**
 * Grows or shrinks. Growing works while attached; the holder's clients see the new size after they
 * reconnect (`reconnectNeeded`), because NBD fixes the size at the handshake.
 * Shrinking needs the volume detached, the name typed again, and a multiple of the chunk size (a partial
 * last chunk would keep stale bytes past the end that a later grow would reveal); the chunks past the
 * end leave the chunk map at once and their objects go by a GC job.
 */
export async function resizeVolume(ctx: ServiceContext, rawInput: z.input<typeof resizeVolumeInput>): Promise<ResizeOutcome> {
  requireWrite(ctx);
  const input = parseInput(resizeVolumeInput, rawInput);
  const { runtime } = ctx;
  const row = await findOwnedVolume(ctx, input.name);
  checkSize(input.size);
  if (input.size === row.sizeBytes) return { volume: await volumeView(runtime, row), chunksFreed: 0, reconnectNeeded: false };
  const shrink = input.size < row.sizeBytes;
  if (shrink) {
    if (input.confirmShrink !== row.name) {
      throw new ServiceError("BAD_REQUEST", `shrinking deletes the data past the new end: type the volume name (${row.name}) to confirm`, {
        field: "confirmShrink",
      });
    }
    if (input.size % row.chunkSize !== 0) {
      throw new ServiceError("BAD_REQUEST", `a smaller size must be a multiple of the chunk size (${formatSize(row.chunkSize)})`, { field: "size" });
    }
    await requireDetached(ctx, row, "shrinking it");
  }
  const outcome = await resizeVolumeRow(runtime.database.db, row.id, input.size);
  await writeHeader(runtime.store, outcome.row, slotsOf(outcome.row));
  if (outcome.chunksFreed > 0) {
    // After the grace period, so a reader still holding the old map finishes first.
    await runtime.queues.addGc({ volumeId: row.id }, runtime.config.gcGraceMs + 1_000);
  }
  await recordActivity(ctx, {
    ownerId: row.ownerId,
    volumeId: row.id,
    volumeName: row.name,
    action: "volume.resize",
    detail: { fromBytes: row.sizeBytes, toBytes: input.size, chunksFreed: outcome.chunksFreed },
  });
  runtime.logger.info(
    { volumeId: row.id, volume: row.name, fromBytes: row.sizeBytes, toBytes: input.size, chunksFreed: outcome.chunksFreed },
    "volume resized",
  );
  const volume = await volumeView(runtime, outcome.row);
  const reconnectNeeded = !shrink && (volume.attached !== null || volume.lease !== null);
  return { volume, chunksFreed: outcome.chunksFreed, reconnectNeeded };
}

/** Verifies the passphrase and leaves an unlock grant (24 h) the gateways use to open the volume. */
export async function unlockVolume(ctx: ServiceContext, rawInput: z.input<typeof unlockVolumeInput>): Promise<VolumeView> {
  requireWrite(ctx);
  const input = parseInput(unlockVolumeInput, rawInput);
  const { runtime } = ctx;
  const row = await findOwnedVolume(ctx, input.name);
  let dataKey: Buffer;
  try {
    dataKey = await unlockDataKey({ volumeId: row.id, slots: slotsOf(row), passphrase: input.passphrase });
  } catch (error) {
    throw translateKeyError(error, row.name);
  }
  try {
    await storeUnlockGrant(runtime.redis, runtime.config.prefix, runtime.masterKey.key, row.id, dataKey);
  } finally {
    dataKey.fill(0);
  }
  await recordActivity(ctx, { ownerId: row.ownerId, volumeId: row.id, volumeName: row.name, action: "volume.unlock" });
  runtime.logger.info({ volumeId: row.id, volume: row.name }, "volume unlocked");
  return volumeView(runtime, row);
}

export interface LockOutcome {
  volume: VolumeView;
  /** false: there was no unlock grant (already locked, or the 24 h ran out); nothing changed. */
  wasUnlocked: boolean;
  message: string;
}

/**
 * Removes the unlock grant, so the next attach needs the passphrase again. Every gateway holding the
 * volume commits what was written, closes it and drops its cache (decrypted data); clients still
 * connected get errors from then on. Only a volume without auto-unlock can be locked: one with an
 * auto-unlock slot opens with the master key whatever the grant says.
 */
export async function lockVolume(ctx: ServiceContext, input: { name: string }): Promise<LockOutcome> {
  requireWrite(ctx);
  const { name } = parseInput(volumeByName, input);
  const { runtime } = ctx;
  const row = await findOwnedVolume(ctx, name);
  if (slotsOf(row).some((slot) => slot.kind === "master")) {
    throw new ServiceError(
      "BAD_REQUEST",
      `volume ${row.name} has auto-unlock: gateways open it with the master key, so it cannot be locked (only a volume created without auto-unlock, with a passphrase alone, can)`,
    );
  }
  const had = await hasUnlockGrant(runtime.redis, runtime.config.prefix, row.id);
  await deleteUnlockGrant(runtime.redis, runtime.config.prefix, row.id);
  // Every gateway closes the volume's engine and drops its cache (decrypted data); harmless if none has it.
  await runtime.redis.publish(volumeLockedChannel(runtime.config.prefix), row.id);
  if (had) {
    await recordActivity(ctx, { ownerId: row.ownerId, volumeId: row.id, volumeName: row.name, action: "volume.lock" });
    runtime.logger.info({ volumeId: row.id, volume: row.name }, "volume locked");
  }
  const message = had
    ? `locked volume ${row.name}: its gateway commits and closes it and drops its cached data; the next attach needs the passphrase (volume unlock)`
    : `volume ${row.name} was already locked: the next attach needs the passphrase (volume unlock)`;
  return { volume: await volumeView(runtime, row), wasUnlocked: had, message };
}

/**
 * Replaces the passphrase: rewrites the key slots in the row and the bucket's volume header, never a
 * chunk object. The old passphrase is required when the volume has one; a volume with only auto-unlock
 * gets its first passphrase from the key the master key unwraps.
 */
export async function changeVolumePassphrase(ctx: ServiceContext, rawInput: z.input<typeof changePassphraseInput>): Promise<VolumeView> {
  requireWrite(ctx);
  const input = parseInput(changePassphraseInput, rawInput);
  const { runtime } = ctx;
  const row = await findOwnedVolume(ctx, input.name);
  const slots = slotsOf(row);
  const hasPassphrase = slots.some((slot) => slot.kind === "passphrase");
  let newSlots: KeySlot[];
  try {
    if (hasPassphrase) {
      if (!input.oldPassphrase) throw new ServiceError("BAD_REQUEST", "the current passphrase is required", { field: "oldPassphrase" });
      newSlots = await changePassphrase({
        volumeId: row.id,
        slots,
        oldPassphrase: input.oldPassphrase,
        newPassphrase: input.newPassphrase,
        kdf: runtime.config.kdf,
      });
    } else {
      const dataKey = await unlockDataKey({ volumeId: row.id, slots, masterKey: runtime.masterKey.key });
      try {
        newSlots = await changePassphrase({ volumeId: row.id, slots, dataKey, newPassphrase: input.newPassphrase, kdf: runtime.config.kdf });
      } finally {
        dataKey.fill(0);
      }
    }
  } catch (error) {
    throw translateKeyError(error, row.name, "oldPassphrase");
  }
  const updated = await updateVolumeKeySlots(runtime.database.db, row.id, newSlots);
  await writeHeader(runtime.store, updated, newSlots);
  await recordActivity(ctx, { ownerId: row.ownerId, volumeId: row.id, volumeName: row.name, action: "volume.passphrase" });
  runtime.logger.info({ volumeId: row.id, volume: row.name }, "volume passphrase changed");
  return volumeView(runtime, updated);
}
