/**
 * Device credential rows and the deployment's key rows (the NBD CA). Nothing secret passes through
 * here: a credential is an id, a certificate fingerprint and its limits; the CA's private key arrives
 * already sealed with the master key.
 */
import { and, desc, eq, inArray, isNull } from "drizzle-orm";
import type { Db } from "./client";
import { DbError, sqlStateOf } from "./errors";
import { deploymentKeys, deviceCredentials, type DeploymentKeyRow, type DeviceCredentialRow } from "./schema";

export interface NewDeviceCredential {
  id: string;
  userId: string;
  name: string;
  volumeIds: string[] | null;
  expiresAt: Date | null;
  certFingerprintSha256: string;
  certSerial: string;
}

/** A new credential; a live credential of the same user with this name -> DEVICE_NAME_TAKEN. */
export async function insertDeviceCredential(db: Db, input: NewDeviceCredential): Promise<DeviceCredentialRow> {
  try {
    const [row] = await db.insert(deviceCredentials).values(input).returning();
    return row!;
  } catch (err) {
    if (sqlStateOf(err) === "23505") throw new DbError("DEVICE_NAME_TAKEN", `a device named ${JSON.stringify(input.name)} already exists`, { cause: err });
    throw err;
  }
}

/** A user's credentials, newest first (revoked ones included: the page shows them greyed out). */
export async function listDeviceCredentialRows(db: Db, userId: string): Promise<DeviceCredentialRow[]> {
  return db.select().from(deviceCredentials).where(eq(deviceCredentials.userId, userId)).orderBy(desc(deviceCredentials.createdAt));
}

export async function findDeviceCredentialById(db: Db, id: string): Promise<DeviceCredentialRow | undefined> {
  const [row] = await db.select().from(deviceCredentials).where(eq(deviceCredentials.id, id));
  return row;
}

export async function findDeviceCredentialByFingerprint(db: Db, fingerprintSha256: string): Promise<DeviceCredentialRow | undefined> {
  const [row] = await db.select().from(deviceCredentials).where(eq(deviceCredentials.certFingerprintSha256, fingerprintSha256.toLowerCase()));
  return row;
}

/** Revokes the user's credential; undefined when the user has no such unrevoked credential. */
export async function revokeDeviceCredentialRow(db: Db, userId: string, id: string, at = new Date()): Promise<DeviceCredentialRow | undefined> {
  const [row] = await db
    .update(deviceCredentials)
    .set({ revokedAt: at })
    .where(and(eq(deviceCredentials.id, id), eq(deviceCredentials.userId, userId), isNull(deviceCredentials.revokedAt)))
    .returning();
  return row;
}

export async function touchDeviceCredential(db: Db, id: string, at: Date): Promise<void> {
  await db.update(deviceCredentials).set({ lastUsedAt: at }).where(eq(deviceCredentials.id, id));
}

/** Of these credential ids, the ones that may no longer be used at `now` (revoked, expired or gone). */
export async function findUnusableDeviceCredentials(db: Db, ids: readonly string[], now: Date): Promise<string[]> {
  if (ids.length === 0) return [];
  const unique = [...new Set(ids)];
  const usable = await db
    .select({ id: deviceCredentials.id, revokedAt: deviceCredentials.revokedAt, expiresAt: deviceCredentials.expiresAt })
    .from(deviceCredentials)
    .where(inArray(deviceCredentials.id, unique));
  const stillUsable = new Set(usable.filter((row) => !row.revokedAt && !(row.expiresAt && row.expiresAt <= now)).map((row) => row.id));
  return unique.filter((id) => !stillUsable.has(id));
}

export async function findDeploymentKey(db: Db, kind: string): Promise<DeploymentKeyRow | undefined> {
  const [row] = await db.select().from(deploymentKeys).where(eq(deploymentKeys.kind, kind));
  return row;
}

/**
 * Stores the deployment key of `kind` unless one exists, and returns the one that is stored: when two
 * processes create it at the same moment, both end up using the first one written.
 */
export async function insertDeploymentKeyOnce(
  db: Db,
  input: { kind: string; certPem: string; sealedKey: string; fingerprintSha256: string },
): Promise<DeploymentKeyRow> {
  await db.insert(deploymentKeys).values(input).onConflictDoNothing({ target: deploymentKeys.kind });
  const row = await findDeploymentKey(db, input.kind);
  if (!row) throw new DbError("INVALID_ARGUMENT", `deployment key ${input.kind} vanished after insert`);
  return row;
}
