/**
 * The gateway process: database, object store, volume engines, NBD server and the control API,
 * started in that order and stopped in reverse. In the embedded default all of it lives in one
 * process, because an embedded PGlite database belongs to exactly one process.
 */
import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { DbError, ensureLocalAdmin, openDatabase, type Database } from "@stratus/db";
import type { ObjectStore } from "@stratus/storage";
import type { Server } from "node:http";
import type { GatewayConfig } from "../config/env";
import { ensureCliToken } from "../control/cli-token";
import { createHttpApi } from "../control/http-api";
import { VolumeEngines } from "../engine/volume-engines";
import type { Logger } from "../logger";
import { createNbdServer } from "../server/nbd-server";
import { openObjectStore, rootCause, StartupError } from "./open-store";

export interface RunningGateway {
  nbdUrl: string;
  webUrl: string;
  stop(): Promise<void>;
}

export async function startGateway(config: GatewayConfig, logger: Logger): Promise<RunningGateway> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(`${config.dataDir}/cache`, { recursive: true });

  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) {
      await step().catch((error: unknown) => logger.error({ err: error }, "shutdown step failed"));
    }
  };

  try {
    const database = await openDatabaseOrExplain(config);
    cleanups.push(() => database.close());
    const store: ObjectStore = await openObjectStore(config.store);
    cleanups.push(() => store.close());
    const owner = await ensureLocalAdmin(database.db);

    const engines = new VolumeEngines({
      database,
      store,
      logger,
      memoryCacheBytes: config.memoryCacheBytes,
      dirtyLimitBytes: config.dirtyLimitBytes,
    });
    cleanups.push(() => engines.closeAll());

    const nbd = createNbdServer({ registry: engines, logger: logger.child({ part: "nbd" }) });
    const nbdPort = await listenOrExplain("NBD", config.nbd.host, config.nbd.port, (port, host) =>
      nbd.listen(port, host).then((address) => address.port),
    );
    cleanups.push(() => nbd.close());
    const nbdUrl = `nbd://${hostForUrl(config.nbd.host)}:${nbdPort}`;

    const tokens = await ensureCliToken(config.dataDir);
    const http = createHttpApi({
      context: { database, store, engines, logger },
      ownerId: owner.id,
      tokens,
      logger: logger.child({ part: "http" }),
      nbdUrl,
    });
    const webPort = await listenOrExplain("web", config.web.host, config.web.port, (port, host) => listenHttp(http, port, host));
    cleanups.push(() => closeHttp(http));
    const webUrl = `http://${hostForUrl(config.web.host)}:${webPort}`;

    logger.info(
      { nbdUrl, webUrl, store: config.store.kind, database: database.kind, dataDir: config.dataDir },
      "stratus ready",
    );
    return { nbdUrl, webUrl, stop: cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function openDatabaseOrExplain(config: GatewayConfig): Promise<Database> {
  try {
    return await openDatabase(config.database);
  } catch (error) {
    const where = config.database.kind === "pglite" ? `embedded database in ${config.database.dataDir}` : "PostgreSQL (DATABASE_URL)";
    // The database package's own messages already name the target (without its password).
    const reason = error instanceof DbError ? error.message : rootCause(error);
    throw new StartupError(`cannot open the ${where}: ${reason}`, { cause: error });
  }
}

async function listenOrExplain(
  what: string,
  host: string,
  port: number,
  listen: (port: number, host: string) => Promise<number>,
): Promise<number> {
  try {
    return await listen(port, host);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const variable = what === "NBD" ? "STRATUS_NBD_PORT" : "STRATUS_WEB_PORT";
    if (code === "EADDRINUSE") {
      throw new StartupError(`${what} port ${host}:${port} is already in use: stop what holds it or set ${variable}`, { cause: error });
    }
    if (code === "EADDRNOTAVAIL") {
      throw new StartupError(`${what} address ${host} is not an address of this machine`, { cause: error });
    }
    throw new StartupError(`cannot listen for ${what} on ${host}:${port}: ${rootCause(error)}`, { cause: error });
  }
}

function listenHttp(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeHttp(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
