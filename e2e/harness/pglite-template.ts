/**
 * A PGlite cluster made once per machine and PGlite version, copied into each new gateway data folder
 * the harness makes: initdb takes ~5 s, and the suite starts dozens of fresh gateways. The gateway's
 * own first start (initdb in a child process) is still what a test meets when it brings its own data
 * folder, as npm start, the stop and startup tests and the web stack do.
 */
import { existsSync } from "node:fs";
import { cp, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { initPgliteDataDir, PGLITE_SHARED_BUFFERS } from "@stratus/db";
import { REPO_ROOT } from "./repo";

async function pgliteVersion(): Promise<string> {
  const manifest = path.join(REPO_ROOT, "node_modules", "@electric-sql", "pglite", "package.json");
  return (JSON.parse(await readFile(manifest, "utf8")) as { version: string }).version;
}

/** Puts a fresh, empty cluster at `<dataDir>/db` (where the embedded default keeps its database). */
export async function seedPgliteDataDir(dataDir: string): Promise<void> {
  const template = path.join(os.tmpdir(), `stratus-e2e-pglite-${await pgliteVersion()}-${PGLITE_SHARED_BUFFERS}`);
  if (!existsSync(path.join(template, "PG_VERSION"))) {
    const making = await mkdtemp(`${template}-making-`);
    await initPgliteDataDir(making);
    // Another worker may have won the race: its template is as good as ours.
    await rename(making, template).catch(() => rm(making, { recursive: true, force: true }));
  }
  await cp(template, path.join(dataDir, "db"), { recursive: true });
}
