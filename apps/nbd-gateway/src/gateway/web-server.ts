/**
 * The dashboard inside the gateway process (the embedded default): Next.js through its custom-server API
 * over the production build in apps/web/.next. The gateway registers its runtime on
 * globalThis[RUNTIME_SYMBOL] first, so the app's route handlers use this process's database (an embedded
 * PGlite belongs to one process), store, queues and Redis. `next` is imported only here and only when
 * the web part runs (`--no-web` never loads it).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { installPeerHeader, RUNTIME_SYMBOL, StartupError, type Runtime } from "@stratus/control";

export const WEB_APP_DIR = fileURLToPath(new URL("../../../web", import.meta.url));

export interface EmbeddedWeb {
  server: Server;
  close(): Promise<void>;
}

export async function createEmbeddedWeb(options: { runtime: Runtime; authSecret: string; host: string; port: number }): Promise<EmbeddedWeb> {
  if (!existsSync(path.join(WEB_APP_DIR, ".next", "BUILD_ID"))) {
    throw new StartupError(`the dashboard is not built: run \`npm run build -w @stratus/web\` (npm start does it for you), or start with --no-web`);
  }
  (globalThis as Record<symbol, unknown>)[RUNTIME_SYMBOL] = { runtime: options.runtime, authSecret: options.authSecret };
  // As Next's own standalone server does: the configuration the build resolved, so Next does not load
  // next.config.ts, whose compiler (SWC, ~25 MiB of native code) would then stay mapped. Headers and
  // redirects are in the build's routes manifest already.
  // eslint-disable-next-line no-restricted-properties -- Next's own input, not configuration read here
  process.env.__NEXT_PRIVATE_STANDALONE_CONFIG = JSON.stringify(await builtConfig());
  // Through a variable: a static import would pull Next's global type augmentations into the gateway's build.
  const nextModule = "next";
  const { default: next } = (await import(nextModule)) as { default: (options: object) => NextApp };
  const app = next({ dir: WEB_APP_DIR, dev: false, hostname: options.host, port: options.port, quiet: true });
  await app.prepare();
  const handle = app.getRequestHandler();
  // The client's address for per-IP rate limits, from the socket, under a header no client can send.
  installPeerHeader();
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error");
    });
  });
  server.keepAliveTimeout = 5_000;
  return {
    server,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await app.close?.();
      delete (globalThis as Record<symbol, unknown>)[RUNTIME_SYMBOL];
    },
  };
}

/** The configuration `next build` resolved, from its manifest. */
async function builtConfig(): Promise<object> {
  const manifest = JSON.parse(await readFile(path.join(WEB_APP_DIR, ".next", "required-server-files.json"), "utf8")) as { config: object };
  return manifest.config;
}

interface NextApp {
  prepare(): Promise<void>;
  getRequestHandler(): (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => Promise<void>;
  close?(): Promise<void>;
}
