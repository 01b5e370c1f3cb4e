import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file lives in e2e/harness). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The `stratus` command's entry point: run with `node STRATUS_BIN …`. */
export const STRATUS_BIN = path.join(REPO_ROOT, "apps/nbd-gateway/bin/stratus.mjs");
