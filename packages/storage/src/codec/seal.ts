/**
 * Sealing one object and opening it again: compress (or store plain), then AES-256-GCM with a random
 * 96-bit nonce; the tag covers the header and the object's place (volume id, index, generation).
 * Pure functions of a key and bytes, so the same code runs on the calling thread (SealedCodec) and in
 * the codec worker threads (codec-pool.ts). Layout: object-header.ts.
 */
import { createCipheriv, createDecipheriv, createHash, randomFillSync, type KeyObject } from "node:crypto";
import { StorageError } from "../errors";
import { compressPayload, decompressPayload, type Compression } from "./compression";
import { HEADER_BYTES, NONCE_BYTES, OBJECT_KIND, TAG_BYTES, additionalData, readObjectHeader, writeObjectHeader, type ObjectKind } from "./object-header";

/** Where an object belongs: all of it is bound into the GCM tag. */
export interface Place {
  kind: ObjectKind;
  volumeId: string;
  index: number;
  generation: number;
}

export function sealObject(key: KeyObject, compression: Compression, plain: Buffer, place: Place): Buffer {
  const { id, payload } = compressPayload(plain, compression);
  const body = Buffer.allocUnsafe(HEADER_BYTES + payload.length + TAG_BYTES);
  const header = body.subarray(0, HEADER_BYTES);
  const nonce = randomFillSync(Buffer.allocUnsafe(NONCE_BYTES));
  writeObjectHeader(header, { kind: OBJECT_KIND[place.kind], compression: id, flags: 0, nonce });
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(additionalData(header, place.volumeId, place.index, place.generation));
  const encrypted = cipher.update(payload);
  const tail = cipher.final(); // empty for GCM
  if (encrypted.length + tail.length !== payload.length) throw new StorageError("EIO", "AES-GCM changed the payload length");
  encrypted.copy(body, HEADER_BYTES);
  tail.copy(body, HEADER_BYTES + encrypted.length);
  cipher.getAuthTag().copy(body, HEADER_BYTES + payload.length);
  return body;
}

export function openObject(key: KeyObject, stored: Buffer, place: Place): Buffer {
  const what = describePlace(place);
  const header = readObjectHeader(stored, what);
  if (header.kind !== OBJECT_KIND[place.kind]) throw new StorageError("EIO", `${what} is not a ${place.kind} object (kind ${header.kind})`);
  if (header.flags !== 0) throw new StorageError("EIO", `${what} has unknown flags ${header.flags}`);
  const decipher = createDecipheriv("aes-256-gcm", key, header.nonce);
  decipher.setAAD(additionalData(stored, place.volumeId, place.index, place.generation));
  decipher.setAuthTag(stored.subarray(stored.length - TAG_BYTES));
  let payload: Buffer;
  try {
    const body = decipher.update(stored.subarray(HEADER_BYTES, stored.length - TAG_BYTES));
    const tail = decipher.final();
    payload = tail.length === 0 ? body : Buffer.concat([body, tail]);
  } catch (error) {
    // Wrong key, tampered bytes, or an object that belongs elsewhere: indistinguishable by design.
    throw new StorageError("EIO", `${what} failed authentication`, { cause: error });
  }
  return decompressPayload(payload, header.compression, what);
}

/** Hex SHA-256 of an object body: what S3's SigV4 signs as the payload hash. */
export function sha256Hex(body: Uint8Array): string {
  return createHash("sha256").update(body).digest("hex");
}

export function describePlace(place: Place): string {
  return place.kind === "chunk"
    ? `chunk ${place.index} generation ${place.generation} of volume ${place.volumeId}`
    : `manifest epoch ${place.generation} of volume ${place.volumeId}`;
}
