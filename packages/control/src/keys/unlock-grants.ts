/**
 * Unlock across processes. `unlockVolume` runs wherever the request landed (the web process); the data
 * key is needed by whichever gateway opens the volume. So the verb stores an unlock grant in Redis:
 * `<prefix>:unlock:<volumeId>` = the data key sealed with the deployment's master key (AES-256-GCM, the
 * volume id as additional data, so a grant copied to another volume's key does not open), TTL 24 h.
 * Gateways' KeyRing read it when opening a volume. Without the master key a grant is useless; the
 * passphrase never leaves the process that received it.
 */
import { openBox, sealBox } from "./sealed-box";
import type { Redis } from "ioredis";

export const UNLOCK_GRANT_TTL_SECONDS = 24 * 3600;
const VERSION = 1;

export const unlockGrantKey = (prefix: string, volumeId: string) => `${prefix}:unlock:${volumeId}`;
/** Pub/sub channel: a volume id published here was locked; gateways close its engine and drop its cache. */
export const volumeLockedChannel = (prefix: string) => `${prefix}:locked`;

const aad = (volumeId: string) => Buffer.from(`stratus unlock grant v${VERSION} ${volumeId}`);

export function sealUnlockGrant(masterKey: Buffer, volumeId: string, dataKey: Buffer): string {
  return sealBox(masterKey, VERSION, aad(volumeId), dataKey);
}

/** The data key, or undefined when the grant does not open with this master key for this volume. */
export function openUnlockGrant(masterKey: Buffer, volumeId: string, grant: string): Buffer | undefined {
  return openBox(masterKey, VERSION, aad(volumeId), grant);
}

export async function storeUnlockGrant(redis: Redis, prefix: string, masterKey: Buffer, volumeId: string, dataKey: Buffer): Promise<void> {
  await redis.set(unlockGrantKey(prefix, volumeId), sealUnlockGrant(masterKey, volumeId, dataKey), "EX", UNLOCK_GRANT_TTL_SECONDS);
}

export async function readUnlockGrant(redis: Redis, prefix: string, masterKey: Buffer, volumeId: string): Promise<Buffer | undefined> {
  const grant = await redis.get(unlockGrantKey(prefix, volumeId));
  return grant ? openUnlockGrant(masterKey, volumeId, grant) : undefined;
}

export async function hasUnlockGrant(redis: Redis, prefix: string, volumeId: string): Promise<boolean> {
  return (await redis.exists(unlockGrantKey(prefix, volumeId))) === 1;
}

export async function deleteUnlockGrant(redis: Redis, prefix: string, volumeId: string): Promise<void> {
  await redis.del(unlockGrantKey(prefix, volumeId));
}
