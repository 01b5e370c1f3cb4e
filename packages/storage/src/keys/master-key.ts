/**
 * The deployment's master key (STRATUS_MASTER_KEY): base64 of 32 random bytes. It wraps each
 * volume's auto-unlock slot. Messages about it never include the key or the text it came from.
 */
import { createHash, randomBytes } from "node:crypto";
import { StorageError } from "../errors";

export const MASTER_KEY_BYTES = 32;

/** Parses the configured text; throws EINVAL with a fix-it message (never echoing the value). */
export function parseMasterKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = /^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, "base64") : Buffer.alloc(0);
  if (key.length !== MASTER_KEY_BYTES || key.toString("base64") !== trimmed) {
    throw new StorageError(
      "EINVAL",
      `STRATUS_MASTER_KEY must be the base64 encoding of exactly ${MASTER_KEY_BYTES} bytes (make one with: openssl rand -base64 32)`,
    );
  }
  return key;
}

export function generateMasterKey(): Buffer {
  return randomBytes(MASTER_KEY_BYTES);
}

/** The text form parseMasterKey reads (for the embedded default's master.key file). */
export function formatMasterKey(key: Buffer): string {
  checkMasterKey(key);
  return key.toString("base64");
}

/** sha256(master key), first 8 bytes as hex: names the key in slots and logs without revealing it. */
export function masterKeyId(key: Buffer): string {
  checkMasterKey(key);
  return createHash("sha256").update(key).digest().subarray(0, 8).toString("hex");
}

export function checkMasterKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== MASTER_KEY_BYTES) {
    throw new StorageError("EINVAL", `a master key is ${MASTER_KEY_BYTES} bytes`);
  }
}
