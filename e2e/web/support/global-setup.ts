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

function buildTime(): number {
  try {
    return statSync(path.join(REPO_ROOT, "apps/web/.next/BUILD_ID")).mtimeMs;
  } catch {
    return 0; // never built
  }
}

function buildWebIfStale(): void {
  const sources = Math.max(...SOURCE_ROOTS.map((p) => newestMtime(path.join(REPO_ROOT, p))));
  const deadline = Date.now() + 5 * 60_000;
  while (buildTime() <= sources || process.env.STRATUS_E2E_REBUILD === "1") {
    console.log("[web e2e] building apps/web (next build)…");
    const result = spawnSync("npm", ["run", "build", "-w", "@stratus/web"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
    });
    if (result.status === 0) return;
    const output = `${result.stdout}${result.stderr}`;
    // Someone else (a developer, `npm start`) is building the same app: wait for theirs, then look again.
    if (output.includes("Another next build process is already running") && Date.now() < deadline) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3_000);
      continue;
    }
    throw new Error(`next build failed (exit ${result.status ?? result.signal})\n${output.slice(-4000)}`);
  }
}
