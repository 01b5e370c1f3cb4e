/**
 * Building a Runtime from settings, for a process that is not the embedded gateway (`next start` in the
 * scaled-out shape, tests). The embedded gateway builds its own from the parts it already has and
 * registers it under RUNTIME_SYMBOL, where the web app finds it.
 */
import { mkdir } from "node:fs/promises";
import { openDatabase, type OpenDatabaseOptions } from "@stratus/db";
import { RetryingObjectStore } from "@stratus/storage";
import type { ConnectionOptions } from "bullmq";
import { Redis } from "ioredis";
import type { Runtime, RuntimeSettings, VerbLogger } from "./context";
import { JobQueues } from "./jobs/queues";
import { loadMasterKey } from "./keys/master-key-file";
import { openObjectStore, type StoreSettings } from "./open-store";

/** Where the embedded gateway leaves its runtime for the Next app in the same process. */
export const RUNTIME_SYMBOL = Symbol.for("stratus.runtime");

export interface OpenRuntimeOptions {
  dataDir: string;
  database: OpenDatabaseOptions;
  store: StoreSettings;
  redisUrl: string;
  masterKey: Buffer | undefined;
  settings: RuntimeSettings;
  logger: VerbLogger;
}

export interface OwnedRuntime extends Runtime {
  close(): Promise<void>;
}

export async function openRuntime(options: OpenRuntimeOptions): Promise<OwnedRuntime> {
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const database = await openDatabase(options.database);
  const closers: Array<() => Promise<unknown>> = [() => database.close()];
  try {
    const store = new RetryingObjectStore(await openObjectStore(options.store));
    closers.push(() => store.close());
    const masterKey = await loadMasterKey({ configured: options.masterKey, dataDir: options.dataDir }, options.logger);
    const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: false });
    closers.push(async () => redis.disconnect());
    const queues = new JobQueues({ connection: redisConnection(options.redisUrl), prefix: options.settings.prefix });
    closers.push(() => queues.close());
    return {
      database,
      store,
      queues,
      masterKey,
      redis,
      config: options.settings,
      logger: options.logger,
      close: async () => {
        for (const close of closers.reverse()) await close().catch(() => undefined);
      },
    };
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw error;
  }
}

/** BullMQ connection options from a redis:// URL (BullMQ wants maxRetriesPerRequest null). */
export function redisConnection(url: string): ConnectionOptions {
  const parsed = new URL(url);
  const db = Number(parsed.pathname.replace(/^\//, "") || 0);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db,
    tls: parsed.protocol === "rediss:" ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}
