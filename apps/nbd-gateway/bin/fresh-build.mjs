// Where the built `stratus` lives and whether it is up to date: kept to node:fs so that the check,
// which every run of the command makes, costs a few milliseconds (build.mjs makes the build).
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
export const DIST = path.join(ROOT, "apps/nbd-gateway/dist");
/** The current build's folder and the size and modification time of every file that went into it. */
export const BUILD_RECORD = path.join(DIST, "build.json");

/** What the build remembers of an input (relative to the repository): changes when the file does. */
export function inputStamp(input) {
  const stat = statSync(path.join(ROOT, input), { throwIfNoEntry: false });
  return stat ? `${stat.size}:${stat.mtimeMs}` : "missing";
}

/** The current build's folder when every input is as it was built from, else undefined. */
export function freshBuild() {
  let record;
  try {
    record = JSON.parse(readFileSync(BUILD_RECORD, "utf8"));
  } catch {
    return undefined;
  }
  for (const [input, stamp] of Object.entries(record.inputs)) if (inputStamp(input) !== stamp) return undefined;
  return path.join(DIST, record.folder);
}

/** The current build's folder whether or not it is up to date, if there is one. */
export function anyBuild() {
  try {
    return path.join(DIST, JSON.parse(readFileSync(BUILD_RECORD, "utf8")).folder);
  } catch {
    return undefined;
  }
}
