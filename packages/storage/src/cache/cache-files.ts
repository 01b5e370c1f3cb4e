/** Small file helpers of the disk cache: chunk file names, synchronous full writes, fsync, errors. */
import { closeSync, fstatSync, openSync, writeSync } from "node:fs";
import { open as openHandle } from "node:fs/promises";
import { StorageError, isStorageError } from "../errors";

/** A chunk file's name: its index as 16 hex digits, so a listing sorts in chunk order. */
export function chunkFileName(index: number): string {
  return index.toString(16).padStart(16, "0");
}

export function fileSizeOf(file: string): number {
  const fd = openSync(file, "r");
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

export function writeFully(fd: number, data: Uint8Array, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) done += writeSync(fd, data, offset + done, length - done, position + done);
}

/** Fsyncs a file or directory through its own descriptor; one removed meanwhile needs nothing. */
export async function fsyncFile(file: string): Promise<void> {
  let handle;
  try {
    handle = await openHandle(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function isNoSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

export function noSpace(error: unknown, dir: string): StorageError {
  return new StorageError("ENOSPC", `the local cache disk is full (${dir}); the write was refused, nothing else changed`, { cause: error });
}

/** A file system error as a StorageError: ENOSPC for a full disk, else EIO naming `what`. */
export function fileError(error: unknown, what: string): StorageError {
  if (isStorageError(error)) return error;
  if (isNoSpace(error)) return new StorageError("ENOSPC", `${what}: the local cache disk is full`, { cause: error });
  return new StorageError("EIO", `${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}
