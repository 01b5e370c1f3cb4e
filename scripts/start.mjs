#!/usr/bin/env node
// `npm start`: the embedded default in one process. Builds the dashboard (apps/web, `next build`) when
// its production build is missing or older than its sources, then runs `stratus gateway` (NBD, workers,
// private redis-server and the dashboard on STRATUS_WEB_PORT), which builds its own JavaScript when
// stale (apps/nbd-gateway/bin/build.mjs). Arguments are passed to the gateway (e.g.
// `npm start -- --no-web`, which skips the dashboard's build).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { constants as osConstants } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gatewayProcessEnv } from "../apps/nbd-gateway/bin/gateway-env.mjs";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const web = path.join(root, "apps/web");
const args = process.argv.slice(2);

/** Newest modification time under the given paths (skipping build output and dependencies). */
function newest(paths) {
  let latest = 0;
  const visit = (entry) => {
    const stat = statSync(entry, { throwIfNoEntry: false });
    if (!stat) return;
    if (stat.isDirectory()) {
      for (const name of readdirSync(entry)) if (name !== "node_modules" && name !== ".next") visit(path.join(entry, name));
    } else latest = Math.max(latest, stat.mtimeMs);
  };
  for (const p of paths) visit(p);
  return latest;
}

if (!args.includes("--no-web")) {
  const buildId = path.join(web, ".next", "BUILD_ID");
  const sources = [path.join(web, "src"), path.join(web, "next.config.ts"), path.join(web, "package.json"), path.join(root, "packages")];
  const stale = !existsSync(buildId) || statSync(buildId).mtimeMs < newest(sources);
  if (stale) {
    process.stdout.write("building the dashboard (next build)…\n");
    const nextBin = path.join(root, "node_modules/next/dist/bin/next");
    const built = spawnSync(process.execPath, [nextBin, "build"], {
      cwd: web,
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
    });
    if (built.status !== 0) {
      process.stderr.write("stratus: building the dashboard failed (see above); `npm start -- --no-web` runs without it\n");
      process.exit(built.status ?? 1);
    }
  }
}

// The gateway is a process of its own so that settings read at a process's start apply (gateway-env.mjs).
// It stays in this process group (a kill of the group reaches it) and stops by itself if this process
// dies; signals sent to this process alone are passed on, and this process exits with the gateway's code.
const gateway = spawn(process.execPath, [path.join(root, "apps/nbd-gateway/bin/stratus.mjs"), "gateway", "--exit-with-parent", ...args], {
  cwd: root,
  stdio: "inherit",
  env: gatewayProcessEnv(process.env),
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => gateway.kill(signal));
gateway.on("exit", (code, signal) => process.exit(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
// npm passes a SIGTERM it receives to the shell it ran this script with, which exits without passing it
// on: when this process's parent is gone, stop the gateway as if told to.
const parent = process.ppid;
const watchParent = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(watchParent);
  gateway.kill("SIGTERM");
}, 500);
watchParent.unref();
