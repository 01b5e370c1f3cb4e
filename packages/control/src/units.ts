/**
 * Human sizes ("10G", "512K", "1.5T", "4096") to bytes and back. Binary units throughout:
 * G means GiB, as qemu-img and truncate read it, so `--size 10G` matches what users type there.
 */
const UNIT_SHIFT: Record<string, number> = { "": 0, B: 0, K: 10, M: 20, G: 30, T: 40, P: 50 };

export class SizeParseError extends Error {}

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

export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || Number.isInteger(value) ? 0 : value < 10 ? 2 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "5s", "10m", "250ms", "1h" (a bare number is seconds) to milliseconds. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
  if (!match) throw new SizeParseError(`"${text}" is not a duration: use a number with a unit ms, s, m, h or d (e.g. 10m)`);
  const ms = Number(match[1]) * (DURATION_UNIT_MS[(match[2] ?? "s").toLowerCase()] ?? 1000);
  if (!Number.isSafeInteger(Math.round(ms))) throw new SizeParseError(`"${text}" is too long a duration`);
  return Math.round(ms);
}
