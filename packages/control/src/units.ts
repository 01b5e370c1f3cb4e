/**
 * Human sizes ("10G", "512K", "1.5T", "4096") to bytes and back, and durations. parseSize is the
 * storage package's (one rule for every part); binary units throughout: G means GiB.
 */
import { SizeParseError } from "@stratus/storage/sizes";

export { parseSize, SizeParseError } from "@stratus/storage/sizes";

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
