/**
 * A closed cache folder's uncommitted writes as a raw image of the volume: each dirty chunk's content
 * at its offset, and nothing (a hole, zeros) everywhere else. This is how a person gets at an orphan
 * set, the dirty chunks a fenced gateway kept aside: `cmp` it against the volume, `dd` ranges out of
 * it, or loop-mount it when the set holds a whole file system. Clean chunks are left out on purpose:
 * they are copies of committed data and the bucket has them.
 *
 * Chunk files are plain (the cache holds decrypted, uncompressed data), named by index in 16 hex
 * digits under <dir>/c/; the journal says which are dirty. A dirty chunk without a file was trimmed
 * (reads as zeros); a file shorter than its chunk reads as zeros past its end.
 */
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readSync } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { StorageError } from "../errors";
import { chunkFileName, writeFully } from "./cache-files";
import { readChunkStates } from "./cache-journal";

export interface ImageGeometry {
  /** The volume's size in bytes: the image's length. */
  sizeBytes: number;
  chunkSize: number;
}

export interface DirtyChunk {
  index: number;
  /** The chunk's file, or null for a dirty hole (trimmed: zeros). */
  file: string | null;
}

/** The dirty chunks of a closed cache folder, in chunk order. */
export function listDirtyChunks(dir: string): DirtyChunk[] {
  if (!existsSync(dir)) throw new StorageError("ENOTFOUND", `no cache folder at ${dir}`);
  const out: DirtyChunk[] = [];
  for (const [index, state] of readChunkStates(dir)) {
    if (!state.dirty) continue;
    const file = path.join(dir, "c", chunkFileName(index));
    out.push({ index, file: existsSync(file) ? file : null });
  }
  return out.sort((a, b) => a.index - b.index);
}

function chunkLength(geometry: ImageGeometry, index: number): number {
  return Math.max(0, Math.min(geometry.chunkSize, geometry.sizeBytes - index * geometry.chunkSize));
}

/** Reads up to `length` bytes of a chunk file into `target` (zeros past the file's end). */
function readChunk(file: string, target: Buffer, length: number): void {
  target.fill(0, 0, length);
  const fd = openSync(file, "r");
  try {
    const wanted = Math.min(length, fstatSync(fd).size);
    let done = 0;
    while (done < wanted) {
      const n = readSync(fd, target, done, wanted - done, done);
      if (n === 0) break;
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes the image to `out` as a sparse file (mode 0600: it holds decrypted data): its length is the
 * volume's size, and only the dirty chunks with content take space. Chunks past the end (the volume
 * shrank since) are left out. Returns how many chunks were written.
 */
export function writeDirtyImage(dir: string, geometry: ImageGeometry, out: string): { chunks: number; bytes: number } {
  const chunks = listDirtyChunks(dir);
  const buffer = Buffer.alloc(geometry.chunkSize);
  const fd = openSync(out, "w", 0o600);
  let written = 0;
  let bytes = 0;
  try {
    ftruncateSync(fd, geometry.sizeBytes);
    for (const chunk of chunks) {
      const length = chunkLength(geometry, chunk.index);
      if (length === 0 || chunk.file === null) continue;
      readChunk(chunk.file, buffer, length);
      writeFully(fd, buffer, 0, length, chunk.index * geometry.chunkSize);
      written++;
      bytes += length;
    }
  } finally {
    closeSync(fd);
  }
  return { chunks: written, bytes };
}

/** Zeros are sent from one shared buffer, this much at a time. */
const ZERO_PIECE = 1024 * 1024;

/**
 * The same image as a byte stream (for an HTTP download): the volume's whole length, zeros between
 * the dirty chunks. A receiver that wants a sparse file skips runs of zeros (the CLI does).
 */
export function dirtyImageStream(dir: string, geometry: ImageGeometry): Readable {
  const chunks = listDirtyChunks(dir).filter((chunk) => chunkLength(geometry, chunk.index) > 0);
  const zeros = Buffer.alloc(Math.min(ZERO_PIECE, Math.max(1, geometry.chunkSize)));
  async function* pieces(): AsyncGenerator<Buffer> {
    let position = 0;
    const zerosUpTo = function* (end: number): Generator<Buffer> {
      while (position < end) {
        const n = Math.min(zeros.length, end - position);
        position += n;
        yield zeros.subarray(0, n);
      }
    };
    for (const chunk of chunks) {
      const start = chunk.index * geometry.chunkSize;
      yield* zerosUpTo(start);
      const length = chunkLength(geometry, chunk.index);
      if (chunk.file === null) {
        yield* zerosUpTo(start + length);
        continue;
      }
      // A fresh buffer per chunk: a stream consumer may hold on to what it was given.
      const data = Buffer.alloc(length);
      const handle = await open(chunk.file, "r");
      try {
        const { size } = await handle.stat();
        let done = 0;
        const wanted = Math.min(length, size);
        while (done < wanted) {
          const { bytesRead } = await handle.read(data, done, wanted - done, done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
      } finally {
        await handle.close();
      }
      position = start + length;
      yield data;
    }
    yield* zerosUpTo(geometry.sizeBytes);
  }
  return Readable.from(pieces(), { objectMode: false });
}
