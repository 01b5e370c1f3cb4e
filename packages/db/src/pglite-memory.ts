/**
 * What keeps the embedded database's memory small. PGlite reserves PostgreSQL's default 128 MB of
 * shared buffers inside its WebAssembly memory, and a WebAssembly memory never shrinks: the chunk
 * maps' working set is far smaller, and the files stay in the kernel's page cache anyway. Creating a
 * new cluster (initdb) loads a second WebAssembly instance that a process then keeps mapped, so a
 * new data folder is created by a short-lived child process and only opened here.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { promisify } from "node:util";
import { PGlite } from "@electric-sql/pglite";

export const PGLITE_SHARED_BUFFERS = "16MB";

/** PGlite's start parameters with Stratus's memory settings. */
export function pgliteStartParams(): string[] {
  return [...PGlite.defaultStartParams, "-c", `shared_buffers=${PGLITE_SHARED_BUFFERS}`];
}

/** Creates the cluster in `dataDir` in a child process unless it holds one already. */
export async function initPgliteDataDir(dataDir: string): Promise<void> {
  if (existsSync(path.join(dataDir, "PG_VERSION"))) return;
  const pglite = createRequire(import.meta.url).resolve("@electric-sql/pglite");
  const script =
    "const [pglite, dir, params] = process.argv.slice(1); require(pglite).PGlite.create(dir, { startParams: JSON.parse(params) }).then((db) => db.close());";
  try {
    await promisify(execFile)(process.execPath, ["-e", script, pglite, dataDir, JSON.stringify(pgliteStartParams())], { maxBuffer: 16 * 2 ** 20 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim().slice(-2000);
    throw new Error(`initdb failed: ${stderr || (err as Error).message}`, { cause: err });
  }
}
