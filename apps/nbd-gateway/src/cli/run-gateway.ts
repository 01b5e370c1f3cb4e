/**
 * `stratus gateway`: starts the gateway and stops it on SIGINT, SIGTERM or SIGHUP (bounded; see
 * gateway/stop.ts). A second request exits at once: every acknowledged write has already reached
 * the cache files through the kernel, and the next start commits what the bucket lacks, as after a
 * crash. With --exit-with-parent (scripts/start.mjs passes it) the gateway also stops when the
 * process that started it is gone, so a killed `npm start` leaves no gateway behind.
 */
import { setFlagsFromString } from "node:v8";
import { loadGatewayConfig } from "../config/env";
import { startGateway } from "../gateway/start";
import { createLogger, resolveLogFormat } from "../logger";
import { StopRequests } from "./stop-requests";

export interface RunGatewayOptions {
  web: boolean;
  exitWithParent?: boolean;
}

/** How often the gateway looks for its parent under --exit-with-parent. */
const PARENT_CHECK_MS = 500;

export async function runGateway(options: RunGatewayOptions): Promise<void> {
  // PGlite's WebAssembly is compiled (and hot functions recompiled) on V8's worker threads, and each
  // thread's malloc arena keeps what its compiles freed (gateway-env.mjs): one task at a time leaves
  // fewer arenas holding it (docs/performance.md, "The gateway's memory at rest").
  setFlagsFromString("--wasm-num-compilation-tasks=1");
  const config = loadGatewayConfig();
  // Other writers (the dashboard's log, Next.js) must not crash the gateway once nobody reads its output.
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);
  const logger = createLogger(config.logLevel, resolveLogFormat(config.logFormat, process.stdout.isTTY === true));
  const gateway = await startGateway(config, logger, { web: options.web });
  const requests = new StopRequests();

  const onStopRequest = (reason: string) => {
    const request = requests.receive();
    logger.debug({ reason, request }, "stop requested");
    if (request === "copy") return;
    if (request === "now") {
      logger.warn({ reason }, "stopping now: anything not yet committed stays in the local cache and is committed at the next start");
      process.exit(0);
    }
    logger.info({ reason, commitTimeoutMs: config.stopTimeoutMs }, "stopping: finishing requests, then committing open volumes (again to stop at once)");
    gateway.stop().then(
      (outcome) => {
        logger.info({ committed: outcome.committed }, "stopped");
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "stopped with errors");
        process.exit(1);
      },
    );
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => onStopRequest(signal));

  if (options.exitWithParent) {
    const parent = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(watch);
      onStopRequest("the process that started the gateway is gone");
    }, PARENT_CHECK_MS);
    watch.unref();
  }
}
