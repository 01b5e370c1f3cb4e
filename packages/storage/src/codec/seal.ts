/**
 * Sealing one object and opening it again: compress (or store plain), then AES-256-GCM with a random
 * 96-bit nonce; the tag covers the header and the object's place (volume id, index, generation).
 * Pure functions of a key and bytes, so the same code runs on the calling thread (SealedCodec) and in
 * the codec worker threads (codec-pool.ts). Layout: object-header.ts.
 */
import { createCipheriv, createDecipheriv, createHash, randomFillSync, type KeyObject } from "node:crypto";
import { StorageError } from "../errors";
import { compressPayload, decompressPayload, type Compression } from "./compression";
import {
  COMPRESSION_ID,
  HEADER_BYTES,
  NONCE_BYTES,
  OBJECT_KIND,
  TAG_BYTES,
  additionalData,
  readObjectHeader,
  writeObjectHeader,
  type ObjectKind,
} from "./object-header";
import { copyBytes } from "../util/copy-bytes";

/** Where an object belongs: all of it is bound into the GCM tag. */
export interface Place {
  kind: ObjectKind;
  volumeId: string;
  index: number;
  generation: number;
}

/**
 * AES-GCM runs over the payload in slices of this size, each copied straight into the output:
 * node:crypto returns a new Buffer per update(), and one over a whole megabyte is a fresh mapping
 * whose every page faults on first touch, while slices come from malloc's warm heap.
 */
const CIPHER_SLICE = 64 * 1024;

/** Runs `cipher` over `input` slice by slice, writing the output into `target` at `at`. */
function cipherInto(cipher: { update(data: Buffer): Buffer; final(): Buffer }, input: Buffer, target: Buffer, at: number): number {
  let written = at;
  for (let from = 0; from < input.length; from += CIPHER_SLICE) {
    written += copyBytes(cipher.update(input.subarray(from, from + CIPHER_SLICE)), target, written);
  }
  return written + copyBytes(cipher.final(), target, written); // final() is empty for GCM
}

/**
 * Seals `plain` for `place`. The body is written into `output` when it fits (a view of it comes
 * back), else into a new Buffer.
 */
export function sealObject(key: KeyObject, compression: Compression, plain: Buffer, place: Place, output?: Buffer): Buffer {
  const { id, payload } = compressPayload(plain, compression);
  const size = HEADER_BYTES + payload.length + TAG_BYTES;
  const body = output !== undefined && output.length >= size ? output.subarray(0, size) : Buffer.allocUnsafe(size);
  const header = body.subarray(0, HEADER_BYTES);
  const nonce = randomFillSync(Buffer.allocUnsafe(NONCE_BYTES));
  writeObjectHeader(header, { kind: OBJECT_KIND[place.kind], compression: id, flags: 0, nonce });
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(additionalData(header, place.volumeId, place.index, place.generation));
  const end = cipherInto(cipher, payload, body, HEADER_BYTES);
  if (end !== HEADER_BYTES + payload.length) throw new StorageError("EIO", "AES-GCM changed the payload length");
  cipher.getAuthTag().copy(body, end);
  return body;
}

/**
 * Decrypted compressed payloads up to SCRATCH_LIMIT land here before zstd expands them (one object
 * at a time per thread); larger ones (big manifests) get their own Buffer.
 */
let compressedScratch: Buffer | undefined;
const SCRATCH_LIMIT = 8 * 1024 * 1024;

/**
 * Opens a sealed object. A plain-stored payload is decrypted straight into `output` when it fits
 * (a view of it comes back), else into a new Buffer. On a failed tag `output` holds unauthenticated
 * bytes: the caller gets StorageError("EIO") and must not use it.
 */
export function openObject(key: KeyObject, stored: Buffer, place: Place, output?: Buffer): Buffer {
  const what = describePlace(place);
  const header = readObjectHeader(stored, what);
  if (header.kind !== OBJECT_KIND[place.kind]) throw new StorageError("EIO", `${what} is not a ${place.kind} object (kind ${header.kind})`);
  if (header.flags !== 0) throw new StorageError("EIO", `${what} has unknown flags ${header.flags}`);
  const decipher = createDecipheriv("aes-256-gcm", key, header.nonce);
  decipher.setAAD(additionalData(stored, place.volumeId, place.index, place.generation));
  decipher.setAuthTag(stored.subarray(stored.length - TAG_BYTES));
  const sealed = stored.subarray(HEADER_BYTES, stored.length - TAG_BYTES);
  const plainStored = header.compression === COMPRESSION_ID.none;
  let target: Buffer;
  if (plainStored) {
    target = output !== undefined && output.length >= sealed.length ? output.subarray(0, sealed.length) : Buffer.allocUnsafe(sealed.length);
  } else if (sealed.length <= SCRATCH_LIMIT) {
    if (compressedScratch === undefined || compressedScratch.length < sealed.length) compressedScratch = Buffer.allocUnsafe(sealed.length);
    target = compressedScratch.subarray(0, sealed.length);
  } else {
    target = Buffer.allocUnsafe(sealed.length);
  }
  try {
    cipherInto(decipher, sealed, target, 0);
  } catch (error) {
    // Wrong key, tampered bytes, or an object that belongs elsewhere: indistinguishable by design.
    throw new StorageError("EIO", `${what} failed authentication`, { cause: error });
  }
  return plainStored ? target : decompressPayload(target, header.compression, what);
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
