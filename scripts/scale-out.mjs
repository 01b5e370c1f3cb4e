#!/usr/bin/env node
// The scaled-out stack on this machine, without Docker (scripts/scale-out-stack.ts says what it starts):
// `node scripts/scale-out.mjs [--web-port 3000] [--nbd-port 10809] [--gateways 2]`; Ctrl-C stops it.
import { register } from "tsx/esm/api";

register();
const { runScaleOut } = await import("./scale-out-stack.ts");
await runScaleOut(process.argv.slice(2));
