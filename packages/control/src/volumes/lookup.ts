import { findVolumeByName, type VolumeRow } from "@stratus/db";
import { type KeySlot, writeVolumeHeader, type ObjectStore, StorageError } from "@stratus/storage";
import { DbError } from "@stratus/db";
import type { ServiceContext } from "../context";
import { ServiceError } from "../errors";

/** The actor's active volume by name; anyone else's (or none) is NOT_FOUND, never FORBIDDEN. */
export async function findOwnedVolume(ctx: ServiceContext, name: string, options: { includeDeleting?: boolean } = {}): Promise<VolumeRow> {
  const row = await findVolumeByName(ctx.runtime.database.db, name, ctx.actor.userId);
  if (!row || (row.state !== "active" && !options.includeDeleting)) throw new ServiceError("NOT_FOUND", `no volume named ${name}`);
  return row;
}

export function writeHeader(store: ObjectStore, row: VolumeRow, slots: KeySlot[]): Promise<void> {
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
    // A clone's header carries what recover needs to read its ancestors' chunks again.
    ...(row.inheritedKeys.length > 0 ? { inherited: row.inheritedKeys } : {}),
    ...(row.clonedFrom ? { clonedFrom: row.clonedFrom } : {}),
  });
}

export function translateKeyError(error: unknown, name: string, field = "passphrase"): unknown {
  if (error instanceof StorageError && error.code === "EPERM") {
    return new ServiceError("FORBIDDEN", `wrong passphrase for volume ${name}`, { field, cause: error });
  }
  if (error instanceof StorageError && error.code === "EINVAL") return new ServiceError("BAD_REQUEST", error.message, { cause: error });
  return error;
}

export function translateDbError(error: unknown): unknown {
  if (error instanceof DbError) {
    if (error.code === "VOLUME_EXISTS") return new ServiceError("CONFLICT", error.message, { field: "name", cause: error });
    if (error.code === "INVALID_VOLUME_NAME") return new ServiceError("BAD_REQUEST", error.message, { field: "name", cause: error });
  }
  return error;
}
