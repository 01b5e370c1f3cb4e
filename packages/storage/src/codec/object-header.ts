/**
 * The 20-byte header every sealed object starts with, and the additional authenticated data
 * (AAD) that binds an object to the one place it belongs.
 *
 *   offset size
 *   0      4   magic "STRC"
 *   4      1   format version (1)
 *   5      1   kind: 1 = chunk, 2 = manifest
 *   6      1   compression: 0 = none, 1 = zstd
 *   7      1   flags (0)
 *   8      12  nonce (random per object)
 *   20     ..  AES-256-GCM ciphertext of the (possibly compressed) payload
 *   end-16 16  GCM tag
 *
 * AAD = the 20 header bytes + UTF-8 volumeId + 0x00 + u64 BE index + u64 BE generation.
 */
import { StorageError } from "../errors";

export const OBJECT_MAGIC = Buffer.from("STRC", "ascii");
export const OBJECT_FORMAT_VERSION = 1;
export const HEADER_BYTES = 20;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

export const OBJECT_KIND = { chunk: 1, manifest: 2 } as const;
export type ObjectKind = keyof typeof OBJECT_KIND;

export const COMPRESSION_ID = { none: 0, zstd: 1 } as const;
export type CompressionId = (typeof COMPRESSION_ID)[keyof typeof COMPRESSION_ID];

/** Manifests use this index in their AAD: no chunk can have it (indexes stay below 2^53-1). */
export const MANIFEST_INDEX = Number.MAX_SAFE_INTEGER;

export interface ObjectHeader {
  kind: number;
  compression: number;
  flags: number;
  nonce: Buffer;
}

/** Writes the header into the first 20 bytes of `target`. */
export function writeObjectHeader(target: Buffer, header: ObjectHeader): void {
  OBJECT_MAGIC.copy(target, 0);
  target[4] = OBJECT_FORMAT_VERSION;
  target[5] = header.kind;
  target[6] = header.compression;
  target[7] = header.flags;
  header.nonce.copy(target, 8, 0, NONCE_BYTES);
}

/** Reads and checks the header; `what` names the object in errors (never key material). */
export function readObjectHeader(stored: Buffer, what: string): ObjectHeader {
  if (stored.length < HEADER_BYTES + TAG_BYTES) {
    throw new StorageError("EIO", `${what} is truncated (${stored.length} bytes)`);
  }
  if (!stored.subarray(0, 4).equals(OBJECT_MAGIC)) throw new StorageError("EIO", `${what} is not a Stratus object (bad magic)`);
  if (stored[4] !== OBJECT_FORMAT_VERSION) {
    throw new StorageError("EIO", `${what} has unsupported format version ${stored[4]}`);
  }
  return { kind: stored[5]!, compression: stored[6]!, flags: stored[7]!, nonce: stored.subarray(8, HEADER_BYTES) };
}

/** Everything the GCM tag covers besides the ciphertext: header, volume, index, generation. */
export function additionalData(header: Buffer, volumeId: string, index: number, generation: number): Buffer {
  const volume = Buffer.from(volumeId, "utf8");
  const aad = Buffer.allocUnsafe(HEADER_BYTES + volume.length + 1 + 16);
  header.copy(aad, 0, 0, HEADER_BYTES);
  volume.copy(aad, HEADER_BYTES);
  aad[HEADER_BYTES + volume.length] = 0;
  aad.writeBigUInt64BE(toU64(index, "index"), HEADER_BYTES + volume.length + 1);
  aad.writeBigUInt64BE(toU64(generation, "generation"), HEADER_BYTES + volume.length + 9);
  return aad;
}

function toU64(value: number, what: string): bigint {
  if (!Number.isSafeInteger(value) || value < 0) throw new StorageError("EINVAL", `bad ${what} ${value}`);
  return BigInt(value);
}
