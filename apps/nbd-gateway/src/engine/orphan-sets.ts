/**
 * Dirty chunks a fenced holder never committed. They must never land over the new holder's chunk map,
 * so the volume's cache folder moves aside whole to <cacheDir>/orphans/<volumeId>-<token>/ with an
 * orphan.json saying what and when. Which lease the data in a cache was written under is recorded in
 * the cache folder (`fencing-token`) when an engine opens, so a later start can tell whether its
 * leftover may still be committed.
 */
import {
  closeSync,
  existsSync,
  rmSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import path from "node:path";

const TOKEN_FILE = "fencing-token";
export const ORPHANS_DIR = "orphans";

export interface OrphanSet {
  volumeId: string;
  /** The token the data was written under. */
  fencingToken: number;
  /** Bytes of chunk files moved aside (dirty and clean alike). */
  bytes: number;
  orphanedAt: string;
  reason: string;
}

/** Records, durably, that what this cache gets from now on is written under `token`. */
export function recordCacheToken(dir: string, token: number): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const fd = openSync(path.join(dir, TOKEN_FILE), "w", 0o600);
  try {
    writeSync(fd, `${token}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The token recorded in a cache folder, or undefined (none yet, or a cache older than leases). */
export function recordedCacheToken(dir: string): number | undefined {
  try {
    const token = Number(readFileSync(path.join(dir, TOKEN_FILE), "utf8").trim());
    return Number.isSafeInteger(token) ? token : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether data written under `recorded` may be committed by a holder that took the lease as `taken`:
 * only when nobody held the volume in between (the lease was kept, or taken right after ours).
 */
export function cacheTokenStillCurrent(recorded: number | undefined, taken: number): boolean {
  return recorded === undefined || taken === recorded || taken === recorded + 1;
}

/** Moves the volume's (closed) cache folder aside as an orphan set; returns where, or undefined when there was none. */
export function orphanCache(
  cacheDir: string,
  volumeId: string,
  fencingToken: number,
  reason: string,
  now = new Date(),
): { dir: string; set: OrphanSet } | undefined {
  const from = path.join(cacheDir, volumeId);
  if (!existsSync(from)) return undefined;
  const parent = path.join(cacheDir, ORPHANS_DIR);
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  let dir = path.join(parent, `${volumeId}-${fencingToken}`);
  // The same token orphaned twice (a second fence before a restart) keeps both.
  for (let n = 2; existsSync(dir); n++) dir = path.join(parent, `${volumeId}-${fencingToken}.${n}`);
  renameSync(from, dir);
  const set: OrphanSet = { volumeId, fencingToken, bytes: chunkBytes(dir), orphanedAt: now.toISOString(), reason };
  writeFileSync(path.join(dir, "orphan.json"), `${JSON.stringify(set, null, 2)}\n`, { mode: 0o600 });
  return { dir, set };
}

function chunkBytes(dir: string): number {
  const chunks = path.join(dir, "c");
  if (!existsSync(chunks)) return 0;
  let bytes = 0;
  for (const name of readdirSync(chunks)) bytes += statSync(path.join(chunks, name)).size;
  return bytes;
}

/** Removes every orphan set of a volume (it was deleted: its data has nowhere to go). */
export function removeOrphanSets(cacheDir: string, volumeId: string): void {
  const parent = path.join(cacheDir, ORPHANS_DIR);
  if (!existsSync(parent)) return;
  for (const name of readdirSync(parent)) {
    if (name.startsWith(`${volumeId}-`)) rmSync(path.join(parent, name), { recursive: true, force: true });
  }
}
