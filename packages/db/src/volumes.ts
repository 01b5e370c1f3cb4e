/**
 * Volume rows: create, look up, list, change state, delete. Only the rows — the volume's chunk objects
 * and engine belong to packages/storage and the gateway, which call these.
 */
import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "./client";
import { DbError, sqlStateOf } from "./errors";
import { newId } from "./ids";
import { volumes, type VolumeRow, type VolumeState } from "./schema";

export const VOLUME_NAME_RULES = "1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit";

/** A volume name; also its NBD export name, so it must be safe to type in a shell and an nbd:// URL. */
export const volumeNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { message: `a volume name is ${VOLUME_NAME_RULES}` });

/** Checks a name, throwing DbError INVALID_VOLUME_NAME with the rules in the message. */
export function parseVolumeName(name: string): string {
  const result = volumeNameSchema.safeParse(name);
  if (!result.success) {
    throw new DbError("INVALID_VOLUME_NAME", `invalid volume name ${JSON.stringify(name.slice(0, 80))}: a volume name is ${VOLUME_NAME_RULES}`);
  }
  return result.data;
}

const MIN_CHUNK_SIZE = 4096;
const MAX_CHUNK_SIZE = 2 ** 30; // fits the integer column with room to spare

const newVolumeSchema = z.object({
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
  /** Bytes per chunk object: a power of two from 4 KiB to 1 GiB. */
  chunkSize: number;
}

/** Creates an active volume with an empty chunk map (epoch 0). Duplicate name for the owner -> VOLUME_EXISTS. */
export async function insertVolume(db: Db, input: NewVolume): Promise<VolumeRow> {
  const name = parseVolumeName(input.name);
  const checked = newVolumeSchema.safeParse(input);
  if (!checked.success) {
    const problems = checked.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`).join("; ");
    throw new DbError("INVALID_ARGUMENT", `invalid volume ${JSON.stringify(name)}: ${problems}`);
  }
  let inserted: VolumeRow[];
  try {
    // DO NOTHING instead of catching the unique violation: a failed statement would abort a caller's
    // enclosing transaction, an empty RETURNING does not.
    inserted = await db
      .insert(volumes)
      .values({ id: newId("volume"), name, ...checked.data })
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
 * Deletes the volume's row and (by cascade) its chunk map. Call it after the volume's objects are gone
 * from the bucket. Returns false when there was no such row, so a retried delete is harmless.
 */
export async function deleteVolumeRow(db: Db, id: string): Promise<boolean> {
  const deleted = await db.delete(volumes).where(eq(volumes.id, id)).returning({ id: volumes.id });
  return deleted.length > 0;
}
