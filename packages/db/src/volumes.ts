/**
 * Volume rows: create, look up, list, change state, delete. Only the rows — the volume's chunk objects
 * and engine belong to packages/storage and the gateway, which call these.
 */
import { and, asc, eq, inArray, sql } from "drizzle-orm";
import { MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from "@stratus/storage/sizes";
import * as z from "zod";
import type { Db } from "./client";
import { DbError, sqlStateOf } from "./errors";
import { isId, newId } from "./ids";
import { VOLUME_COMPRESSIONS, VOLUME_DURABILITIES, type VolumeCompression, type VolumeDurability, type VolumeState } from "./column-values";
import { volumeChunks, volumes, type StoredKeySlot, type StoredInheritedKey, type CloneOrigin, type VolumeRow } from "./schema";

export const VOLUME_NAME_RULES = "1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit";

/** A volume name; also its NBD export name, so it must be safe to type in a shell and an nbd:// URL. */
export const volumeNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { message: `a volume name is ${VOLUME_NAME_RULES}` });

/** Checks a name, throwing DbError INVALID_VOLUME_NAME with the rules in the message. */
export function parseVolumeName(name: string): string {
  const result = volumeNameSchema.safeParse(name);
  if (!result.success) {
    throw new DbError("INVALID_VOLUME_NAME", `invalid volume name ${JSON.stringify(name.slice(0, 80))}: a volume name is ${VOLUME_NAME_RULES}`);
  }
  return result.data;
}

// The slot's full shape is checked by packages/storage; here only that it is one of the two kinds.
const keySlotSchema = z.custom<StoredKeySlot>(
  (slot) => typeof slot === "object" && slot !== null && ["passphrase", "master"].includes(String((slot as { kind?: unknown }).kind)),
  { message: "is not a key slot" },
);

const newVolumeSchema = z.object({
  id: z
    .string()
    .refine((id) => isId("volume", id), { message: "is not a volume id" })
    .optional(),
  durability: z.enum(VOLUME_DURABILITIES).optional(),
  compression: z.enum(VOLUME_COMPRESSIONS).optional(),
  keySlots: z.array(keySlotSchema).optional(),
  state: z.enum(["active", "importing"]).optional(),
  ownerId: z.string().min(1),
  sizeBytes: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  chunkSize: z
    .number()
    .int()
    .min(MIN_CHUNK_SIZE)
    .max(MAX_CHUNK_SIZE)
    .refine((n) => (n & (n - 1)) === 0, { message: "must be a power of two" }),
});

export interface NewVolume {
  ownerId: string;
  name: string;
  sizeBytes: number;
  /** Bytes per chunk object: see isValidChunkSize (@stratus/storage/sizes). */
  chunkSize: number;
  /**
   * The id to use (default: a new one). The gateway picks it first because the volume's key slots and
   * chunk objects are bound to it.
   */
  id?: string;
  durability?: VolumeDurability;
  compression?: VolumeCompression;
  /** Wrapped key slots (never a passphrase or a plain key). */
  keySlots?: StoredKeySlot[];
  /** A clone's ancestors' keys, sealed with its data key. */
  inheritedKeys?: StoredInheritedKey[];
  clonedFrom?: CloneOrigin;
  /** 'importing': created for an import job, not attachable until the job makes it 'active'. */
  state?: "active" | "importing";
}

function checkNewVolume(input: NewVolume): { name: string; data: z.output<typeof newVolumeSchema> } {
  const name = parseVolumeName(input.name);
  const checked = newVolumeSchema.safeParse(input);
  if (!checked.success) {
    const problems = checked.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`).join("; ");
    throw new DbError("INVALID_ARGUMENT", `invalid volume ${JSON.stringify(name)}: ${problems}`);
  }
  return { name, data: checked.data };
}

/** Creates an active volume with an empty chunk map (epoch 0). Duplicate name for the owner -> VOLUME_EXISTS. */
export async function insertVolume(db: Db, input: NewVolume): Promise<VolumeRow> {
  const { name, data } = checkNewVolume(input);
  const { id, keySlots, ...rest } = data;
  let inserted: VolumeRow[];
  try {
    // DO NOTHING instead of catching the unique violation: a failed statement would abort a caller's
    // enclosing transaction, an empty RETURNING does not.
    inserted = await db
      .insert(volumes)
      .values({
        id: id ?? newId("volume"),
        name,
        ...rest,
        keySlots: keySlots ?? [],
        inheritedKeys: input.inheritedKeys ?? [],
        clonedFrom: input.clonedFrom ?? null,
      })
      .onConflictDoNothing({ target: [volumes.ownerId, volumes.name] })
      .returning();
  } catch (err) {
    if (sqlStateOf(err) === "23503") {
      throw new DbError("USER_NOT_FOUND", `cannot create volume ${JSON.stringify(name)}: no user with id ${input.ownerId}`, { cause: err });
    }
    throw err;
  }
  const [row] = inserted;
  if (!row) throw new DbError("VOLUME_EXISTS", `a volume named ${JSON.stringify(name)} already exists`);
  return row;
}

/** Volumes ordered by name; all owners' when ownerId is omitted (the embedded default, admin views). */
export async function listVolumes(db: Db, ownerId?: string): Promise<VolumeRow[]> {
  const query = db.select().from(volumes);
  const filtered = ownerId === undefined ? query : query.where(eq(volumes.ownerId, ownerId));
  return filtered.orderBy(asc(volumes.name), asc(volumes.ownerId));
}

/**
 * The volume with this name. Names are unique per owner only: without ownerId a name that several
 * owners use throws VOLUME_NAME_AMBIGUOUS rather than picking one of them.
 */
export async function findVolumeByName(db: Db, name: string, ownerId?: string): Promise<VolumeRow | undefined> {
  const byName = eq(volumes.name, name);
  const rows = await db
    .select()
    .from(volumes)
    .where(ownerId === undefined ? byName : and(byName, eq(volumes.ownerId, ownerId)))
    .limit(2);
  if (rows.length > 1) {
    throw new DbError("VOLUME_NAME_AMBIGUOUS", `several owners have a volume named ${JSON.stringify(name)}; say whose`);
  }
  return rows[0];
}

export async function findVolumeById(db: Db, id: string): Promise<VolumeRow | undefined> {
  const [row] = await db.select().from(volumes).where(eq(volumes.id, id));
  return row;
}

/** Returns the updated row; a missing volume -> VOLUME_NOT_FOUND. */
export async function setVolumeState(db: Db, id: string, state: VolumeState): Promise<VolumeRow> {
  const [row] = await db.update(volumes).set({ state }).where(eq(volumes.id, id)).returning();
  if (!row) throw new DbError("VOLUME_NOT_FOUND", `no volume with id ${id}`);
  return row;
}

/**
 * Moves the volume from one state to another only if it is still in `from` (an import finishing
 * must not revive a volume a cancel already marked 'deleting'). Returns whether it moved.
 */
export async function moveVolumeState(db: Db, id: string, from: VolumeState, to: VolumeState): Promise<boolean> {
  const moved = await db
    .update(volumes)
    .set({ state: to })
    .where(and(eq(volumes.id, id), eq(volumes.state, from)))
    .returning({ id: volumes.id });
  return moved.length === 1;
}

/**
 * Deletes the volume's row and (by cascade) its chunk map. Call it after the volume's objects are gone
 * from the bucket. Returns false when there was no such row, so a retried delete is harmless.
 */
export async function deleteVolumeRow(db: Db, id: string): Promise<boolean> {
  const deleted = await db.delete(volumes).where(eq(volumes.id, id)).returning({ id: volumes.id });
  return deleted.length > 0;
}

/** Replaces the volume's wrapped key slots (passphrase change); a missing volume -> VOLUME_NOT_FOUND. */
export async function updateVolumeKeySlots(db: Db, id: string, keySlots: StoredKeySlot[]): Promise<VolumeRow> {
  const checked = z.array(keySlotSchema).min(1).safeParse(keySlots);
  if (!checked.success) throw new DbError("INVALID_ARGUMENT", `key slots of volume ${id} must be a non-empty list of slots`);
  const [row] = await db.update(volumes).set({ keySlots }).where(eq(volumes.id, id)).returning();
  if (!row) throw new DbError("VOLUME_NOT_FOUND", `no volume with id ${id}`);
  return row;
}

export interface RecoveredVolume extends NewVolume {
  id: string;
  /** The epoch of the manifest the chunk map came from; the next commit is epoch + 1. */
  epoch: number;
  /** [index, generation, storedSize, owner] of every chunk with an object (owner: a clone's ancestor). */
  chunks: readonly (readonly [number, number, number, string?])[];
}

/**
 * Inserts a volume rebuilt from the bucket (volume header + latest manifest) with its id, epoch and
 * chunk map, in one transaction: either the whole volume is back or nothing is. An id or name that
 * already exists -> VOLUME_EXISTS.
 */
export async function insertRecoveredVolume(db: Db, input: RecoveredVolume): Promise<VolumeRow> {
  if (!Number.isSafeInteger(input.epoch) || input.epoch < 0) throw new DbError("INVALID_ARGUMENT", `invalid epoch ${input.epoch}`);
  const chunkCount = Math.ceil(input.sizeBytes / input.chunkSize);
  for (const [index, generation, storedSize] of input.chunks) {
    if (!Number.isSafeInteger(index) || index < 0 || index >= chunkCount || !Number.isSafeInteger(generation) || generation < 0) {
      throw new DbError("INVALID_ARGUMENT", `recovered volume ${input.id}: bad chunk entry ${index}/${generation}`);
    }
    if (!Number.isInteger(storedSize) || storedSize < 0 || storedSize > 2 ** 31 - 1) {
      throw new DbError("INVALID_ARGUMENT", `recovered volume ${input.id}: chunk ${index} has stored size ${storedSize}`);
    }
  }
  return db.transaction(async (tx) => {
    const existing = await findVolumeById(tx, input.id);
    if (existing) throw new DbError("VOLUME_EXISTS", `a volume with id ${input.id} already exists (${JSON.stringify(existing.name)})`);
    const row = await insertVolume(tx, input);
    const [moved] = await tx.update(volumes).set({ commitEpoch: input.epoch }).where(eq(volumes.id, row.id)).returning();
    for (let start = 0; start < input.chunks.length; start += 50_000) {
      const batch = input.chunks.slice(start, start + 50_000);
      await tx.insert(volumeChunks).select(
        sql`select ${row.id}, u.* from unnest(
          ${sql.param(batch.map(([index]) => index))}::bigint[],
          ${sql.param(batch.map(([, generation]) => generation))}::bigint[],
          ${sql.param(batch.map(([, , storedSize]) => storedSize))}::integer[],
          ${sql.param(batch.map(([, , , owner]) => owner ?? null))}::text[]) as u`,
      );
    }
    return moved!;
  });
}

/** Committed chunk objects and their stored bytes per volume (figures for volumes not open anywhere). */
export async function volumeStoredTotals(db: Db, volumeIds: readonly string[]): Promise<Map<string, { chunks: number; storedBytes: number }>> {
  const out = new Map<string, { chunks: number; storedBytes: number }>();
  if (volumeIds.length === 0) return out;
  const rows = await db
    .select({
      volumeId: volumeChunks.volumeId,
      chunks: sql<number>`count(*)::int`,
      storedBytes: sql<number>`coalesce(sum(${volumeChunks.storedSize}), 0)::bigint`,
    })
    .from(volumeChunks)
    .where(inArray(volumeChunks.volumeId, [...volumeIds]))
    .groupBy(volumeChunks.volumeId);
  for (const row of rows) out.set(row.volumeId, { chunks: Number(row.chunks), storedBytes: Number(row.storedBytes) });
  return out;
}

/**
 * The NBD export name of a volume: its name while no other owner has a volume of that name (the
 * embedded default has one user), else its id, which is always unique and always accepted.
 */
export async function exportNameOf(db: Db, row: VolumeRow): Promise<string> {
  const sameName = await db.select({ id: volumes.id }).from(volumes).where(eq(volumes.name, row.name)).limit(2);
  return sameName.length > 1 ? row.id : row.name;
}
