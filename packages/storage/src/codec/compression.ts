/**
 * Per-object compression: zstd level 1 via zstd-napi, the best ratio of the candidates on text and
 * filesystem metadata at the speed of lz4 (docs/performance.md). It runs synchronously on the
 * calling thread, so callers encode in the codec workers, not on the NBD request path.
 */
import { compress, decompress } from "zstd-napi";
import { StorageError } from "../errors";
import { COMPRESSION_ID, type CompressionId } from "./object-header";

export type Compression = keyof typeof COMPRESSION_ID;
export const COMPRESSIONS = Object.keys(COMPRESSION_ID) as Compression[];

const ZSTD_LEVEL = 1;

/**
 * Incompressible data (media, archives, encrypted files) costs zstd the most, for nothing. So a
 * chunk of at least SAMPLE_FROM bytes is first probed: SAMPLES slices of SAMPLE_BYTES spread evenly
 * over it are compressed together, and when they do not shrink by MIN_SAVING the chunk is stored
 * plain without compressing the rest. The price: a chunk whose compressible part lies
 * wholly between the slices is stored plain too.
 */
const SAMPLE_FROM = 256 * 1024;
const SAMPLES = 4;
const SAMPLE_BYTES = 16 * 1024;
const MIN_SAVING = 0.03;
/** Reused for the slices: compression runs synchronously, one chunk at a time per thread. */
let sampleScratch: Buffer | undefined;

/** True when the evenly spread slices of `plain` do not compress: the whole chunk will not either. */
export function looksIncompressible(plain: Buffer): boolean {
  if (plain.length < SAMPLE_FROM) return false;
  sampleScratch ??= Buffer.allocUnsafe(SAMPLES * SAMPLE_BYTES);
  const stride = Math.floor((plain.length - SAMPLE_BYTES) / (SAMPLES - 1));
  for (let slice = 0; slice < SAMPLES; slice++) {
    const from = slice * stride;
    plain.copy(sampleScratch, slice * SAMPLE_BYTES, from, from + SAMPLE_BYTES);
  }
  const packed = compress(sampleScratch, { compressionLevel: ZSTD_LEVEL });
  return packed.length > sampleScratch.length * (1 - MIN_SAVING);
}

/** The payload to store and how it is stored: plain when compression would not shrink it. */
export function compressPayload(plain: Buffer, compression: Compression): { id: CompressionId; payload: Buffer } {
  if (compression === "none" || plain.length === 0 || looksIncompressible(plain)) return { id: COMPRESSION_ID.none, payload: plain };
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
