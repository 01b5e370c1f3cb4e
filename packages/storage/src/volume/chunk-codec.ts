/**
 * The seam where a chunk's bytes are transformed on their way to and from the bucket. Today the
 * identity codec stores the plain payload; compression and encryption (header, zstd/lz4,
 * AES-256-GCM bound to volume id, chunk index and generation) arrive as codecs here, so nothing
 * above the chunk store changes.
 */
export interface ChunkContext {
  volumeId: string;
  index: number;
  generation: number;
}

export interface ChunkCodec {
  /** Short name, recorded in the volume's settings once there is more than one. */
  readonly name: string;
  /** Plain chunk bytes -> object body. Must not keep or modify `plain`. */
  encode(plain: Buffer, context: ChunkContext): Promise<Uint8Array> | Uint8Array;
  /** Object body -> plain chunk bytes; throws StorageError("EIO") when the body does not verify. */
  decode(stored: Buffer, context: ChunkContext): Promise<Buffer> | Buffer;
}

export const identityCodec: ChunkCodec = {
  name: "identity",
  encode: (plain) => plain,
  decode: (stored) => stored,
};
