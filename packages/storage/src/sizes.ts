/**
 * Size rules shared by the engine, the database, the control verbs and the dashboard, in one place:
 * the chunk sizes a volume may have, and human sizes ("10G", "512K") to bytes and back. No imports,
 * so the dashboard's browser code can use it too (`@stratus/storage/sizes`).
 */

/** A volume's chunk size is a power of two within these bounds (bytes). */
export const MIN_CHUNK_SIZE = 64 * 1024;
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** The rule above in words, for error messages. */
export const CHUNK_SIZE_RULE = "a power of two from 64K to 64M";

export function isValidChunkSize(bytes: number): boolean {
  return Number.isSafeInteger(bytes) && bytes >= MIN_CHUNK_SIZE && bytes <= MAX_CHUNK_SIZE && (bytes & (bytes - 1)) === 0;
}

/** Every valid chunk size, smallest first. */
export const CHUNK_SIZES: readonly number[] = Array.from({ length: Math.log2(MAX_CHUNK_SIZE / MIN_CHUNK_SIZE) + 1 }, (_, i) => MIN_CHUNK_SIZE * 2 ** i);

/** Binary units throughout: G means GiB, as qemu-img and truncate read it. */
const UNIT_SHIFT: Record<string, number> = { "": 0, B: 0, K: 10, M: 20, G: 30, T: 40, P: 50 };

export class SizeParseError extends Error {}

/** "10G", "512K", "1.5T", "4096" to bytes; throws SizeParseError for anything else or a fraction of a byte. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?\s*$/i.exec(text);
  if (!match) {
    throw new SizeParseError(`"${text}" is not a size: use a number with an optional unit K, M, G, T or P (e.g. 10G)`);
  }
  const value = Number(match[1]);
  const shift = UNIT_SHIFT[(match[2] ?? "").toUpperCase()] ?? 0;
  const bytes = value * 2 ** shift;
  if (!Number.isSafeInteger(bytes)) {
    throw new SizeParseError(`"${text}" is not a whole number of bytes`);
  }
  return bytes;
}
