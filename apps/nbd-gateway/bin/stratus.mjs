#!/usr/bin/env node
// The `stratus` command: runs the built JavaScript (apps/nbd-gateway/dist, see build.mjs), building it
// first when it is missing or older than its sources, so a checkout runs without a separate build step
// and no TypeScript is compiled while the command runs.
import path from "node:path";
import { pathToFileURL } from "node:url";
import { anyBuild, freshBuild } from "./fresh-build.mjs";

let folder = freshBuild();
if (folder === undefined) {
  try {
    const { buildGateway } = await import("./build.mjs");
    folder = await buildGateway();
  } catch (error) {
    // A read-only install (the Docker image's code belongs to root) still runs the build it has.
    folder = anyBuild();
    if (folder === undefined) throw error;
    process.stderr.write(`stratus: cannot rebuild (${error instanceof Error ? error.message : String(error)}); running the existing build\n`);
  }
}
await import(pathToFileURL(path.join(folder, "main.mjs")).href);
