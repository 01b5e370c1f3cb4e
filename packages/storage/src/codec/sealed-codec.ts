/**
 * The codec every volume uses: compress (zstd, or stored plain when that does not shrink), then
 * AES-256-GCM with a random 96-bit nonce per object. The tag covers the object header and the
 * object's place (volume id, chunk index, generation), so a flipped bit, an object copied to
 * another volume, index or generation, or an old generation put back under a newer key all fail
 * to decode with StorageError("EIO"), never return wrong bytes. Layout: see object-header.ts.
 *
 * Manifests go through the same seal with kind 2, index MANIFEST_INDEX and generation = epoch:
 * `encodeManifest` / `decodeManifest` (not part of ChunkCodec, which is about chunks).
 *
 * The data key lives in a KeyObject held by an ES private field: not enumerable, absent from
 * JSON.stringify and util.inspect, and the caller may zero its own Buffer after construction.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomFillSync, type KeyObject } from "node:crypto";
import { inspect } from "node:util";
import { StorageError } from "../errors";
import type { ChunkCodec, ChunkContext } from "../volume/chunk-codec";
import { compressPayload, decompressPayload, type Compression } from "./compression";
import {
  HEADER_BYTES,
  MANIFEST_INDEX,
  NONCE_BYTES,
  OBJECT_KIND,
  TAG_BYTES,
  additionalData,
  readObjectHeader,
  writeObjectHeader,
  type ObjectKind,
} from "./object-header";

export const DATA_KEY_BYTES = 32;

export interface SealedCodecOptions {
  /** The volume's 256-bit data key (copied; the codec never exposes it). */
  dataKey: Buffer;
  /** Default "zstd". "none" still encrypts; it only skips compression. */
  compression?: Compression;
}

export interface ManifestContext {
  volumeId: string;
  epoch: number;
}

interface Place {
  kind: ObjectKind;
  volumeId: string;
  index: number;
  generation: number;
}

export class SealedCodec implements ChunkCodec {
  readonly name: string;
  readonly compression: Compression;
  readonly #key: KeyObject;

  constructor(options: SealedCodecOptions) {
    if (!Buffer.isBuffer(options.dataKey) || options.dataKey.length !== DATA_KEY_BYTES) {
      throw new StorageError("EINVAL", `a data key is ${DATA_KEY_BYTES} bytes`);
    }
    this.compression = options.compression ?? "zstd";
    this.name = `sealed-${this.compression}`;
    this.#key = createSecretKey(Buffer.from(options.dataKey));
  }

  encode(plain: Buffer, context: ChunkContext): Buffer {
    return this.seal(plain, { kind: "chunk", ...context });
  }

  decode(stored: Buffer, context: ChunkContext): Buffer {
    return this.open(stored, { kind: "chunk", ...context });
  }

  encodeManifest(plain: Buffer, context: ManifestContext): Buffer {
    return this.seal(plain, { kind: "manifest", volumeId: context.volumeId, index: MANIFEST_INDEX, generation: context.epoch });
  }

  decodeManifest(stored: Buffer, context: ManifestContext): Buffer {
    return this.open(stored, { kind: "manifest", volumeId: context.volumeId, index: MANIFEST_INDEX, generation: context.epoch });
  }

  toJSON(): { name: string; compression: Compression } {
    return { name: this.name, compression: this.compression };
  }

  [inspect.custom](): string {
    return `SealedCodec { name: '${this.name}' }`;
  }

  private seal(plain: Buffer, place: Place): Buffer {
    const { id, payload } = compressPayload(plain, this.compression);
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    const nonce = randomFillSync(Buffer.allocUnsafe(NONCE_BYTES));
    writeObjectHeader(header, { kind: OBJECT_KIND[place.kind], compression: id, flags: 0, nonce });
    const cipher = createCipheriv("aes-256-gcm", this.#key, nonce);
    cipher.setAAD(additionalData(header, place.volumeId, place.index, place.generation));
    const body = cipher.update(payload);
    const tail = cipher.final(); // empty for GCM, kept for correctness
    return Buffer.concat([header, body, tail, cipher.getAuthTag()], HEADER_BYTES + body.length + tail.length + TAG_BYTES);
  }

  private open(stored: Buffer, place: Place): Buffer {
    const what = describe(place);
    const header = readObjectHeader(stored, what);
    if (header.kind !== OBJECT_KIND[place.kind]) throw new StorageError("EIO", `${what} is not a ${place.kind} object (kind ${header.kind})`);
    if (header.flags !== 0) throw new StorageError("EIO", `${what} has unknown flags ${header.flags}`);
    const decipher = createDecipheriv("aes-256-gcm", this.#key, header.nonce);
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
}

function describe(place: Place): string {
  return place.kind === "chunk"
    ? `chunk ${place.index} generation ${place.generation} of volume ${place.volumeId}`
    : `manifest epoch ${place.generation} of volume ${place.volumeId}`;
}
