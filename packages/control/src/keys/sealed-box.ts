/**
 * A small secret sealed under a 32-byte key for storage elsewhere (Redis, a database row): AES-256-GCM
 * with additional data that names what it is, so a sealed value moved to another purpose does not open.
 * Layout, base64: version byte, 12-byte nonce, ciphertext, 16-byte tag.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

export function sealBox(key: Buffer, version: number, additionalData: Buffer, plain: Buffer): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(additionalData);
  const sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([Buffer.from([version]), nonce, sealed, cipher.getAuthTag()]).toString("base64");
}

/** The plain bytes, or undefined when the box does not open with this key and additional data (or was altered). */
export function openBox(key: Buffer, version: number, additionalData: Buffer, box: string): Buffer | undefined {
  const bytes = Buffer.from(box, "base64");
  if (bytes.length < 1 + 12 + 16 + 1 || bytes[0] !== version) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(1, 13));
    decipher.setAAD(additionalData);
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([decipher.update(bytes.subarray(13, bytes.length - 16)), decipher.final()]);
  } catch {
    return undefined;
  }
}
