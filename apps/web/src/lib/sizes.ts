/**
 * Sizes as people type them in the create and resize forms: a number and a binary unit.
 * The server checks the real limits (multiple of 512, at most 4 PiB); this only turns the inputs into
 * bytes and catches what is plainly wrong before a round trip.
 */

export const SIZE_UNITS = [
  { id: "MiB", label: "MiB", bytes: 2 ** 20 },
  { id: "GiB", label: "GiB", bytes: 2 ** 30 },
  { id: "TiB", label: "TiB", bytes: 2 ** 40 },
] as const;
export type SizeUnit = (typeof SIZE_UNITS)[number]["id"];

/** Power-of-two chunk sizes the engine accepts (64 KiB .. 64 MiB); 1 MiB is the default. */
export const CHUNK_SIZES = [16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26].map((power) => 2 ** power);
export const DEFAULT_CHUNK_SIZE = 2 ** 20;

/** "10" + "GiB" -> bytes, or an error sentence for the size field. */
export function parseSize(amount: string, unit: string): { bytes: number } | { error: string } {
  const text = amount.trim();
  if (text === "") return { error: "Enter a size." };
  if (!/^\d+(\.\d+)?$/.test(text)) return { error: "Enter a number, like 10 or 1.5." };
  const factor = SIZE_UNITS.find((u) => u.id === unit)?.bytes;
  if (factor === undefined) return { error: "Choose a unit." };
  const bytes = Math.round(Number(text) * factor);
  if (bytes <= 0) return { error: "The size must be more than zero." };
  if (bytes % 512 !== 0) return { error: "The size must be a whole number of 512-byte sectors." };
  return { bytes };
}

/** The largest unit that expresses `bytes` exactly, for prefilling a resize form. */
export function splitSize(bytes: number): { amount: string; unit: SizeUnit } {
  for (const unit of [...SIZE_UNITS].reverse()) {
    if (bytes >= unit.bytes && bytes % unit.bytes === 0) return { amount: String(bytes / unit.bytes), unit: unit.id };
  }
  return { amount: String(bytes / 2 ** 20), unit: "MiB" };
}
