/**
 * Playwright global setup: makes sure apps/web has a production build no older than its sources,
 * starts the stack (support/stack.ts) and hands its addresses to the test through a state file.
 * The returned function is the teardown.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "../../harness/repo";
import { startStack } from "./stack";
import { STATE_FILE } from "./state";

export default async function globalSetup(): Promise<() => Promise<void>> {
  buildWebIfStale();
  const stack = await startStack();
  const { stop, ...info } = stack;
  mkdirSync(path.dirname(STATE_FILE), { recursive: true });
  writeFileSync(STATE_FILE, JSON.stringify(info, null, 2), { mode: 0o600 });
  return stop;
}

/** Sources that end up in the web build: the app itself and the workspace packages it compiles. */
const SOURCE_ROOTS = ["apps/web/src", "apps/web/next.config.ts", "apps/web/package.json", "packages/control/src", "packages/db/src", "packages/storage/src"];

function newestMtime(target: string): number {
  let stat;
  try {
    stat = statSync(target);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(target)) {
    if (entry === "node_modules" || entry === ".next") continue;
    newest = Math.max(newest, newestMtime(path.join(target, entry)));
  }
  return newest;
}

function buildWebIfStale(): void {
  const buildId = path.join(REPO_ROOT, "apps/web/.next/BUILD_ID");
  let built = 0;
  try {
    built = statSync(buildId).mtimeMs;
  } catch {
    // never built
  }
  const sources = Math.max(...SOURCE_ROOTS.map((p) => newestMtime(path.join(REPO_ROOT, p))));
  if (built > sources && process.env.STRATUS_E2E_REBUILD !== "1") return;
  console.log("[web e2e] building apps/web (next build)…");
  const result = spawnSync("npm", ["run", "build", "-w", "@stratus/web"], { cwd: REPO_ROOT, stdio: "inherit", env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" } });
  if (result.status !== 0) throw new Error(`next build failed (exit ${result.status ?? result.signal})`);
}
