/**
 * Test data: seeded random disk images with holes, file checksums, and what a bucket folder holds.
 * Everything is reproducible from the seed so a failure can be replayed byte for byte.
 */
import { createCipheriv, createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { seededRandom } from "@stratus/storage/testing";

export const MiB = 1024 * 1024;

export interface ImageRun {
  offset: number;
  length: number;
  /** True for random bytes, false for a hole (never written, reads as zeros). */
  data: boolean;
}

export interface SparseImage {
  path: string;
  size: number;
  runs: ImageRun[];
  /** Sum of the data runs' lengths: what a sparse copy has to store. */
  dataBytes: number;
}

/** The one seeded PRNG (the storage package's): the same seed gives the same layout everywhere. */
export { seededRandom };

/**
 * A stream of pseudo-random bytes from a seed: AES-256-CTR over zeros, ~1 GB/s, so even multi-GiB
 * images are quick to make and identical on every run.
 */
export function seededBytes(seed: number): (length: number) => Buffer {
  const key = createHash("sha256").update(`stratus-e2e-${seed}`).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  return (length) => cipher.update(Buffer.alloc(length));
}

/**
 * Writes a sparse image of `size` bytes made of MiB-aligned runs of random data and holes
 * (runs of 1–maxRunMiB MiB; about `dataFraction` of them data). With dataFraction 1 the whole
 * image is random data (benchmark pre-fill).
 */
export async function makeSparseImage(
  file: string,
  { size, seed, dataFraction = 0.5, maxRunMiB = 8 }: { size: number; seed: number; dataFraction?: number; maxRunMiB?: number },
): Promise<SparseImage> {
  if (size % MiB !== 0) throw new Error(`image size must be a multiple of 1 MiB, got ${size}`);
  const random = seededRandom(seed);
  const bytes = seededBytes(seed);
  const runs: ImageRun[] = [];
  for (let offset = 0; offset < size;) {
    const length = Math.min(size - offset, (1 + Math.floor(random() * maxRunMiB)) * MiB);
    runs.push({ offset, length, data: random() < dataFraction });
    offset += length;
  }
  const handle = await open(file, "w");
  try {
    await handle.truncate(size);
    for (const run of runs.filter((r) => r.data)) {
      for (let done = 0; done < run.length; done += 4 * MiB) {
        const piece = bytes(Math.min(4 * MiB, run.length - done));
        await handle.write(piece, 0, piece.length, run.offset + done);
      }
    }
  } finally {
    await handle.close();
  }
  const dataBytes = runs.filter((r) => r.data).reduce((sum, r) => sum + r.length, 0);
  return { path: file, size, runs, dataBytes };
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export interface FolderUsage {
  /** Sum of the files' apparent sizes. */
  bytes: number;
  files: number;
}

/** What a local-directory bucket holds: every file below `dir` (missing folder = empty). */
export async function folderUsage(dir: string): Promise<FolderUsage> {
  let entries: string[];
  try {
    entries = await readdir(dir, { recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { bytes: 0, files: 0 };
    throw err;
  }
  let bytes = 0;
  let files = 0;
  for (const entry of entries) {
    const info = await stat(path.join(dir, entry)).catch(() => undefined); // may vanish mid-listing
    if (info?.isFile()) {
      bytes += info.size;
      files += 1;
    }
  }
  return { bytes, files };
}

/** The bytes stored in a gateway's local-directory bucket ($STRATUS_DATA_DIR/bucket). */
export function bucketUsage(dataDir: string): Promise<FolderUsage> {
  return folderUsage(path.join(dataDir, "bucket"));
}
