const UNITS: Record<string, number> = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, PiB: 2 ** 50 };

/** Reads back what the dashboard prints ("8.02 MiB", "0 B"); undefined for "—" or anything else. */
export function parseShownBytes(text: string): number | undefined {
  const match = /(-?\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|PiB)\b/.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * UNITS[match[2]!]!;
}
