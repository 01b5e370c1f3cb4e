// Bootstrap of a codec worker thread: worker threads do not inherit the tsx loader the gateway
// (bin/stratus.mjs), tsx scripts and vitest run TypeScript with, so it is registered here first.
import { register } from "tsx/esm/api";

register();
await import("./codec-worker.ts");
