/**
 * Sizes as people type them in the create and resize forms: a number and a binary unit.
 * The server checks the real limits (multiple of 512, at most 4 PiB); this only turns the inputs into
 * bytes and catches what is plainly wrong before a round trip.
 */
import { parseSize } from "@stratus/storage/sizes";

export const SIZE_UNITS = [
  { id: "MiB", label: "MiB", bytes: 2 ** 20 },
  { id: "GiB", label: "GiB", bytes: 2 ** 30 },
  { id: "TiB", label: "TiB", bytes: 2 ** 40 },
] as const;
export type SizeUnit = (typeof SIZE_UNITS)[number]["id"];

/** The chunk sizes a volume may have (one rule for engine, database, verbs and forms); 1 MiB is the default. */
export { CHUNK_SIZES, DEFAULT_CHUNK_SIZE } from "@stratus/storage/sizes";

/** "10" + "GiB" -> bytes (through the one parseSize), or an error sentence for the size field. */
export function parseSizeInput(amount: string, unit: string): { bytes: number } | { error: string } {
  const text = amount.trim();
  if (text === "") return { error: "Enter a size." };
  if (!/^\d+(\.\d+)?$/.test(text)) return { error: "Enter a number, like 10 or 1.5." };
  if (!SIZE_UNITS.some((u) => u.id === unit)) return { error: "Choose a unit." };
  let bytes: number;
  try {
    bytes = parseSize(`${text} ${unit}`);
  } catch {
    return { error: SECTORS }; // a fraction of a byte
  }
  if (bytes <= 0) return { error: "The size must be more than zero." };
  if (bytes % 512 !== 0) return { error: SECTORS };
  return { bytes };
}

const SECTORS = "The size must be a whole number of 512-byte sectors.";

/** The largest unit that expresses `bytes` exactly, for prefilling a resize form. */
export function splitSize(bytes: number): { amount: string; unit: SizeUnit } {
  for (const unit of [...SIZE_UNITS].reverse()) {
    if (bytes >= unit.bytes && bytes % unit.bytes === 0) return { amount: String(bytes / unit.bytes), unit: unit.id };
  }
  return { amount: String(bytes / 2 ** 20), unit: "MiB" };
}
