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
