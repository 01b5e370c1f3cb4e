/**
 * The marker of a cache that flushes do not sync (a `cloud` durability volume: what a FLUSH
 * promises is in the bucket, so the local disk need not hold it too).
 *
 * Unsynced files and journal records survive a kill -9 (they sit in the kernel's page cache) but
 * not a power loss or a reboot, after which any of them may be torn or missing. So such a cache
 * names, in `<dir>/unsynced`, the boot it is written in, and is thrown away whole when opened in
 * another boot with that marker still there. Nothing a flush acknowledged is lost by that: it is
 * in the bucket, and the volume reads it from there again. A clean close syncs everything and
 * removes the marker, so an orderly reboot keeps the warm cache.
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
