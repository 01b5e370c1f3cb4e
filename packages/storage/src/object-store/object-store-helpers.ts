import { StorageError } from "../errors";
import type { ByteRange } from "./object-store";

/** Keys are ordered by their UTF-8 bytes, as S3 orders them (not by UTF-16 code units). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Resolves an optional range against an object's size: a range past the end yields nothing. */
export function clampRange(size: number, range: ByteRange | undefined): { start: number; end: number } {
  if (range === undefined) return { start: 0, end: size };
  validateRange(range);
  const start = Math.min(range.offset, size);
  return { start, end: Math.min(size, range.offset + range.length) };
}

export function validateRange(range: ByteRange): void {
  if (!Number.isSafeInteger(range.offset) || !Number.isSafeInteger(range.length) || range.offset < 0 || range.length < 0) {
    throw new StorageError("EINVAL", `invalid byte range ${range.offset}+${range.length}`);
  }
}

export const DEFAULT_LIST_LIMIT = 1000;

export function validateListLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIST_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new StorageError("EINVAL", `invalid list limit ${limit}`);
  return limit;
}
