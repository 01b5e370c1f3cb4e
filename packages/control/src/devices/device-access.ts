/**
 * What the NBD gateway asks of a device credential: after a TLS handshake, whose it is and which volumes
 * it may list and open; while connections stay open, whether it is still usable. Every answer comes
 * from the database, so a revocation or expiry made by any process counts at the next handshake.
 */
import {
  isId,
  findDeviceCredentialByFingerprint,
  findDeviceCredentialById,
  listVolumes,
  touchDeviceCredential,
  type Db,
  type DeviceCredentialRow,
  type VolumeRow,
} from "@stratus/db";
import { deviceCredentialStatus } from "./devices";

/** last_used_at is written at most this often per credential. */
const TOUCH_INTERVAL_MS = 60_000;

export interface DeviceAccess {
  credentialId: string;
  /** The credential's name (shown as the device in live state). */
  name: string;
  userId: string;
  /** null: every volume of the user; else only these ids. */
  volumeIds: string[] | null;
}

/** What the TLS handshake established: the PSK identity, or the client certificate's fingerprint. */
export type PresentedCredential = { pskIdentity: string } | { certFingerprintSha256: string };

/**
 * The access a presented credential grants, or undefined when it is unknown, revoked or expired (one
 * answer for all). Touches last_used_at, throttled.
 */
export async function authorizeDeviceCredential(db: Db, presented: PresentedCredential, now = new Date()): Promise<DeviceAccess | undefined> {
  let row: DeviceCredentialRow | undefined;
  if ("pskIdentity" in presented) {
    if (!isId("device", presented.pskIdentity)) return undefined;
    row = await findDeviceCredentialById(db, presented.pskIdentity);
  } else {
    row = await findDeviceCredentialByFingerprint(db, presented.certFingerprintSha256);
  }
  if (!row || deviceCredentialStatus(row, now) !== "active") return undefined;
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > TOUCH_INTERVAL_MS) {
    await touchDeviceCredential(db, row.id, now);
  }
  return { credentialId: row.id, name: row.name, userId: row.userId, volumeIds: row.volumeIds };
}

/** The active volumes this access may list and open, by name. */
export async function listDeviceVolumes(db: Db, access: Pick<DeviceAccess, "userId" | "volumeIds">): Promise<VolumeRow[]> {
  const allowed = access.volumeIds === null ? undefined : new Set(access.volumeIds);
  return (await listVolumes(db, access.userId)).filter((row) => row.state === "active" && (!allowed || allowed.has(row.id)));
}
