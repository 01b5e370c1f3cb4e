/**
 * The web app's way to the back end. In the embedded default the gateway process registered its runtime
 * on globalThis[RUNTIME_SYMBOL] before preparing Next; otherwise (`next start`) one is built once from
 * the environment. The runtime holds no NBD engines: live state comes through Redis.
 */
import path from "node:path";
import { loadAuthSecret, openRuntime, RUNTIME_SYMBOL, type Runtime } from "@stratus/control";
import { webEnv } from "./env";
import { logger } from "./logger";

type Registered = { runtime: Runtime; authSecret: string };
type GlobalWithRuntime = typeof globalThis & { [RUNTIME_SYMBOL]?: Registered; __stratusOwnRuntime?: Promise<Registered> };

/** What the embedded gateway registers (runtime + the auth secret it generated or read). */
export type RegisteredRuntime = Registered;

export async function getRegistered(): Promise<Registered> {
  const g = globalThis as GlobalWithRuntime;
  const embedded = g[RUNTIME_SYMBOL];
  if (embedded) return embedded;
  g.__stratusOwnRuntime ??= buildFromEnv().catch((error: unknown) => {
    g.__stratusOwnRuntime = undefined; // try again on the next request
    throw error;
  });
  return g.__stratusOwnRuntime;
}

export async function getRuntime(): Promise<Runtime> {
  return (await getRegistered()).runtime;
}

/**
 * `next start` beside the gateways: everything it must share with them has to be configured, or it would
 * make its own (another master key, session secret or queue prefix) and quietly disagree with them.
 */
export function missingSharedSettings(env: ReturnType<typeof webEnv>): string[] {
  const missing: [string, unknown][] = [
    ["STRATUS_MASTER_KEY", env.masterKey],
    ["AUTH_SECRET", env.authSecret],
    ["STRATUS_QUEUE_PREFIX", env.queuePrefix],
    ["REDIS_URL", env.redisUrl],
  ];
  return missing.filter(([, value]) => value === undefined).map(([name]) => name);
}

async function buildFromEnv(): Promise<Registered> {
  const env = webEnv();
  const missing = missingSharedSettings(env);
  if (missing.length > 0 || !env.queuePrefix || !env.redisUrl) {
    throw new Error(
      `the dashboard runs on its own (next start) and must share these settings with the gateways, but they are not set: ${missing.join(", ")} ` +
        `(set the same values as on the gateways; see the README, "Scaled out")`,
    );
  }
  const runtime = await openRuntime({
    dataDir: env.dataDir,
    database: env.databaseUrl
      ? { kind: "postgres", url: env.databaseUrl, migrationsFolder: env.migrationsDir }
      : { kind: "pglite", dataDir: path.join(env.dataDir, "db"), migrationsFolder: env.migrationsDir },
    store: env.store,
    redisUrl: env.redisUrl,
    masterKey: env.masterKey,
    settings: {
      prefix: env.queuePrefix,
      gcGraceMs: env.gcGraceMs,
      handoffTimeoutMs: env.handoffTimeoutMs,
      nbd: env.nbd,
      embedded: false,
      kdf: env.kdfN ? { N: env.kdfN } : undefined,
    },
    logger,
  });
  return { runtime, authSecret: await loadAuthSecret(env.authSecret, env.dataDir) };
}
