#!/usr/bin/env node
// The `stratus` command. The project runs its TypeScript source directly through tsx's loader,
// so there is no build step between a checkout and a running gateway.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
