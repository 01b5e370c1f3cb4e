/**
 * Per-object compression. zstd level 1 via zstd-napi (chosen by measurement, see the package
 * README): the best ratio of the candidates on text and filesystem metadata at the speed of lz4.
 * zstd-napi runs synchronously on the calling thread (~1-3 ms per MiB here); callers encode in
 * upload jobs, not on the NBD request path.
 */
import { compress, decompress } from "zstd-napi";
import { StorageError } from "../errors";
import { COMPRESSION_ID, type CompressionId } from "./object-header";

export type Compression = keyof typeof COMPRESSION_ID;
export const COMPRESSIONS = Object.keys(COMPRESSION_ID) as Compression[];

const ZSTD_LEVEL = 1;

/** The payload to store and how it is stored: plain when compression would not shrink it. */
export function compressPayload(plain: Buffer, compression: Compression): { id: CompressionId; payload: Buffer } {
  if (compression === "none" || plain.length === 0) return { id: COMPRESSION_ID.none, payload: plain };
  const packed = compress(plain, { compressionLevel: ZSTD_LEVEL });
  if (packed.length >= plain.length) return { id: COMPRESSION_ID.none, payload: plain };
  return { id: COMPRESSION_ID.zstd, payload: packed };
}

export function decompressPayload(payload: Buffer, id: number, what: string): Buffer {
  if (id === COMPRESSION_ID.none) return payload;
  if (id === COMPRESSION_ID.zstd) {
    try {
      return decompress(payload);
    } catch (error) {
      // Authenticated bytes that do not decompress: a bug or a writer with another zstd, not tampering.
      throw new StorageError("EIO", `${what} does not decompress`, { cause: error });
    }
  }
  throw new StorageError("EIO", `${what} uses unknown compression ${id}`);
}
