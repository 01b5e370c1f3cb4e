/**
 * The marker of a cache that flushes do not sync (`cloud` durability: what a FLUSH promises is in
 * the bucket). Unsynced files survive a kill -9 but not a reboot, so such a cache names the boot it
 * is written in (`<dir>/unsynced`) and is thrown away whole when opened in another boot with the
 * marker still there; nothing acknowledged is lost, since the bucket has it. A clean close syncs
 * everything and removes the marker, so an orderly reboot keeps the warm cache.
 */
import { existsSync, readFileSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import path from "node:path";
import { fsyncDirectory, writeFileDurably } from "./cache-journal";

const MARKER = "unsynced";
const BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id";

/** The kernel's id of this boot; undefined where there is none (then every flush syncs). */
export function kernelBootId(): string | undefined {
  try {
    const id = readFileSync(BOOT_ID_FILE, "utf8").trim();
    return id.length > 0 ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The boot the cache in `dir` was last written in without syncing, if it was. */
export function readRebootMarker(dir: string): string | undefined {
  try {
    return readFileSync(path.join(dir, MARKER), "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Records, durably and before any unsynced write, that the cache in `dir` is written without syncing in `bootId`. */
export function writeRebootMarker(dir: string, bootId: string): void {
  writeFileDurably(path.join(dir, MARKER), Buffer.from(`${bootId}\n`));
}

/** Everything in `dir` is on disk again: the marker goes. */
export function removeRebootMarker(dir: string): void {
  if (!existsSync(path.join(dir, MARKER))) return;
  unlinkSync(path.join(dir, MARKER));
  fsyncDirectory(dir);
}

/**
 * Empties the cache in `dir` if it was written without syncing in a boot other than `bootId`:
 * everything in it goes, then (last, so a crash in between discards again) the marker. Returns
 * whether it did.
 */
export function discardIfRebooted(dir: string, bootId: string | undefined): boolean {
  const marked = readRebootMarker(dir);
  if (marked === undefined || marked === bootId) return false;
  for (const name of readdirSync(dir)) if (name !== MARKER) rmSync(path.join(dir, name), { recursive: true, force: true });
  fsyncDirectory(dir);
  removeRebootMarker(dir);
  return true;
}
