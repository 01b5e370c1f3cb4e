import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import type { CacheBudget } from "./cache-budget";
import { fileSizeOf } from "./cache-files";
import { CacheJournal } from "./cache-journal";
import { discardIfRebooted, kernelBootId } from "./reboot-marker";

/**
 * Counts the volume caches a gateway finds under its cache root at start as dormant, so the
 * target covers them before any is opened. Returns the volume ids whose cache holds uncommitted
 * data: the gateway must open those and commit them, client or no client.
 */
export function registerDormantCaches(root: string, budget: CacheBudget, bootId = kernelBootId()): string[] {
  const withDirtyData: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return withDirtyData; // no cache yet
  }
  for (const name of names) {
    const dir = path.join(root, name);
    if (!existsSync(path.join(dir, "c"))) continue;
    if (discardIfRebooted(dir, bootId)) continue; // unsynced before a reboot: nothing in it is kept
    const dirty = hasDirtyChunks(dir);
    let bytes = 0;
    for (const file of readdirSync(path.join(dir, "c"))) bytes += fileSizeOf(path.join(dir, "c", file));
    budget.addDormant(dir, bytes, !dirty);
    if (dirty) withDirtyData.push(name);
  }
  return withDirtyData;
}

/** Whether the volume cache in `dir` (closed) holds uncommitted chunks, by its journal. */
export function hasDirtyChunks(dir: string): boolean {
  if (!existsSync(path.join(dir, "c"))) return false;
  const { journal, chunks } = CacheJournal.open(dir);
  journal.close();
  for (const state of chunks.values()) if (state.dirty) return true;
  return false;
}
