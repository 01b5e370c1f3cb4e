/**
 * The codec every volume uses: compress (zstd, or plain when that does not shrink), then AES-256-GCM
 * with a random nonce per object. The tag covers the header and the object's place (volume, chunk
 * index, generation), so a flipped bit, a moved object or an old generation put back fails with
 * StorageError("EIO"), never wrong bytes. Manifests use the same seal (kind 2, generation = epoch).
 * Layout: object-header.ts.
 */
import { createSecretKey, type KeyObject } from "node:crypto";
import { inspect } from "node:util";
import { StorageError } from "../errors";
import type { ChunkCodec, ChunkContext, EncodedChunk } from "../volume/chunk-codec";
import type { CodecPool, SealedBody } from "./codec-pool";
import type { Compression } from "./compression";
import { MANIFEST_INDEX } from "./object-header";
import { openObject, sealObject, sha256Hex, type Place } from "./seal";

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

export class SealedCodec implements ChunkCodec {
  readonly name: string;
  readonly compression: Compression;
  /** Not enumerable, absent from JSON.stringify and util.inspect; the caller may zero its own Buffer. */
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

  /** The sealed body with its SHA-256 (unless `sha256: false`), so an S3 upload need not hash it again. */
  async encodeForUpload(plain: Buffer, context: ChunkContext, options?: { sha256?: boolean }): Promise<EncodedChunk> {
    const body = this.encode(plain, context);
    return options?.sha256 === false ? { body } : { body, sha256: sha256Hex(body) };
  }

  decode(stored: Buffer, context: ChunkContext): Buffer {
    return this.open(stored, { kind: "chunk", ...context });
  }

  /** The same codec for chunks, sealing and opening in `pool`'s worker threads. */
  pooled(pool: CodecPool): PooledSealedCodec {
    return new PooledSealedCodec(this.name, pool, pool.registerKey(this.#key, this.compression));
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
    return sealObject(this.#key, this.compression, plain, place);
  }

  private open(stored: Buffer, place: Place): Buffer {
    return openObject(this.#key, stored, place);
  }
}

/**
 * A SealedCodec whose chunk work runs in a CodecPool: same objects, same errors, but encode and
 * decode are asynchronous and leave the calling thread free. release() when the volume closes.
 */
export class PooledSealedCodec implements ChunkCodec {
  readonly name: string;
  readonly #pool: CodecPool;
  readonly #keyId: number;

  constructor(name: string, pool: CodecPool, keyId: number) {
    this.name = name;
    this.#pool = pool;
    this.#keyId = keyId;
  }

  async encode(plain: Buffer, context: ChunkContext): Promise<Buffer> {
    return (await this.encodeForUpload(plain, context, { sha256: false })).body;
  }

  encodeForUpload(plain: Buffer, context: ChunkContext, options?: { sha256?: boolean }): Promise<SealedBody> {
    return this.#pool.seal(this.#keyId, plain, { kind: "chunk", ...context }, options?.sha256 !== false);
  }

  decode(stored: Buffer, context: ChunkContext, output?: Buffer): Promise<Buffer> {
    return this.#pool.open(this.#keyId, stored, { kind: "chunk", ...context }, output);
  }

  /** Forgets the key in the workers. */
  release(): void {
    this.#pool.dropKey(this.#keyId);
  }

  [inspect.custom](): string {
    return `PooledSealedCodec { name: '${this.name}' }`;
  }
}
