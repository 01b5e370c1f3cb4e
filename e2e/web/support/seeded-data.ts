import { createCipheriv, createHash } from "node:crypto";

/** `length` bytes that look random and are the same for the same seed (AES-256-CTR over zeros). */
export function seededBytes(seed: string, length: number): Buffer {
  const key = createHash("sha256").update(seed).digest();
  const iv = Buffer.alloc(16);
  return createCipheriv("aes-256-ctr", key, iv).update(Buffer.alloc(length));
}
