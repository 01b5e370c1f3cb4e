/**
 * TLS-PSK keys of device credentials. The identity is the credential id; the key is
 * HMAC-SHA256(pskSecret, id), where pskSecret comes from the deployment's master key through HKDF. So
 * no key is stored anywhere, and every process holding the master key can answer a handshake.
 */
import { createHmac, hkdfSync } from "node:crypto";

export const PSK_KEY_BYTES = 32;

function pskSecret(masterKey: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", masterKey, Buffer.alloc(0), "stratus nbd psk v1", 32));
}

/** Derives a credential's key. Cheap enough for a TLS callback (one HKDF, one HMAC). */
export function derivePskKey(masterKey: Buffer, credentialId: string): Buffer {
  return createHmac("sha256", pskSecret(masterKey)).update(credentialId).digest();
}

/** One line of the PSK file libnbd, qemu and nbdkit read: `identity:hexkey`. */
export function pskFileLine(identity: string, key: Buffer): string {
  return `${identity}:${key.toString("hex")}\n`;
}
