/**
 * Opening a cache directory: the journal's chunk states checked against the files found. A clean
 * chunk survives only with a file of the chunk's length that the caller's chunk map still names;
 * every dirty chunk survives (a dirty file is fitted to the chunk's length, a missing one is a
 * hole) — except one journalled as landing as a generation the chunk map names: that commit landed
 * though its answer never came back (the file is unchanged since: a write journals it dirty first),
 * so it is clean at that generation. Files the journal does not name are fills torn by a crash before their record: deleted.
 */
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import path from "node:path";
import { chunkFileName, fileSizeOf } from "./cache-files";
import type { ReplayedChunk } from "./cache-journal";

export type ReplayedEntry =
  | { index: number; state: "clean"; generation: number; bytes: number }
  | { index: number; state: "dirty"; bytes: number }
  | { index: number; state: "dirty-hole" };

export interface ReplayInput {
  chunkDir: string;
  /** The journal's replayed states. */
  chunks: Map<number, ReplayedChunk>;
  chunkCount: number;
  chunkLength(index: number): number;
  /** Whether a clean chunk's generation is still the committed one. */
  keepClean(index: number, generation: number): boolean;
}

/** The entries to rebuild; removes the files of the chunks that do not survive. */
export function replayChunkFiles(input: ReplayInput): ReplayedEntry[] {
  const { chunkDir } = input;
  const entries: ReplayedEntry[] = [];
  const files = new Set(readdirSync(chunkDir));
  for (const [index, state] of input.chunks) {
    const name = chunkFileName(index);
    const file = path.join(chunkDir, name);
    const hasFile = files.delete(name);
    const length = index < input.chunkCount ? input.chunkLength(index) : -1;
    if (length < 0) {
      if (hasFile) unlinkSync(file); // past the end after a shrink
      continue;
    }
    if (state.dirty) {
      if (!hasFile) {
        entries.push({ index, state: "dirty-hole" });
        continue;
      }
      if (state.landing !== undefined && fileSizeOf(file) === length && input.keepClean(index, state.landing)) {
        entries.push({ index, state: "clean", generation: state.landing, bytes: length });
        continue;
      }
      // Content as last written (a resize may have moved the end: fit the file to the chunk).
      const fd = openSync(file, "r+");
      if (fstatSync(fd).size !== length) ftruncateSync(fd, length);
      closeSync(fd);
      entries.push({ index, state: "dirty", bytes: length });
    } else if (hasFile) {
      const size = existsSync(file) ? fileSizeOf(file) : -1;
      if (size === length && input.keepClean(index, state.generation)) entries.push({ index, state: "clean", generation: state.generation, bytes: length });
      else unlinkSync(file);
    }
  }
  for (const stray of files) rmSync(path.join(chunkDir, stray), { force: true });
  return entries;
}
