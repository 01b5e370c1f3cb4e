/**
 * The seam where a chunk's bytes are transformed on their way to and from the bucket, so nothing
 * above the chunk store knows about it. Volumes use SealedCodec (codec/sealed-codec.ts: zstd, then
 * AES-256-GCM bound to volume id, chunk index and generation); the identity codec, the chunk store's
 * default, stores the plain payload (tests).
 */
export interface ChunkContext {
  volumeId: string;
  index: number;
  generation: number;
}

/** An encoded chunk with the SHA-256 of its body (hex, when asked for), which S3 uploads sign as the payload hash. */
export interface EncodedChunk {
  body: Uint8Array;
  sha256?: string;
  /** Hands the body's memory back for reuse once nothing reads it (the upload's body is released). */
  release?(): void;
}

export interface ChunkCodec {
  /** Short name, recorded in the volume's settings once there is more than one. */
  readonly name: string;
  /** Plain chunk bytes -> object body. Must not keep or modify `plain`. */
  encode(plain: Buffer, context: ChunkContext): Promise<Uint8Array> | Uint8Array;
  /**
   * encode() plus the body's SHA-256, when the codec can compute it more cheaply than the store
   * (off-thread). `sha256: false`: the store does not sign bodies, so none is computed.
   */
  encodeForUpload?(plain: Buffer, context: ChunkContext, options?: { sha256?: boolean }): Promise<EncodedChunk>;
  /** Lets go of what the codec holds outside itself (a key in worker threads) once its volume closed. */
  release?(): void;
  /**
   * Object body -> plain chunk bytes; throws StorageError("EIO") when the body does not verify.
   * `output`, when given, is memory the codec may write the plain bytes into and return a view of.
   */
  decode(stored: Buffer, context: ChunkContext, output?: Buffer): Promise<Buffer> | Buffer;
}

export const identityCodec: ChunkCodec = {
  name: "identity",
  encode: (plain) => plain,
  decode: (stored) => stored,
};
