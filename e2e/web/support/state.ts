import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { StackInfo } from "./stack";

/** Written by the global setup (mode 0600; holds the test stack's master key), read by the tests. */
export const STATE_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), "../.run/state.json");

export function readStack(): StackInfo {
  return JSON.parse(readFileSync(STATE_FILE, "utf8")) as StackInfo;
}
