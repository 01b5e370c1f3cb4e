/**
 * The web app's configuration, read from the environment once. Only used when the app runs on its own
 * (`next start`, the scaled-out shape): the embedded gateway hands over a ready runtime instead. The
 * same variables as the gateway (see the README), so both processes agree on the database, Redis,
 * bucket, master key and key prefix.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { isLoopbackHost, parseDuration, parseMetricsListen, parseTrustedProxies, type MetricsListen, type SignUpPolicy } from "@stratus/control";
import type { BlockList } from "node:net";
import * as z from "zod";

const optional = z.string().min(1).optional();
const schema = z.object({
  STRATUS_DATA_DIR: z.string().min(1).default("./.stratus"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
    .optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// URL")
    .optional(),
  STRATUS_S3_ENDPOINT: optional,
  STRATUS_S3_BUCKET: optional,
  STRATUS_S3_REGION: z.string().min(1).default("us-east-1"),
  STRATUS_S3_ACCESS_KEY_ID: optional,
  STRATUS_S3_SECRET_ACCESS_KEY: optional,
  STRATUS_S3_FORCE_PATH_STYLE: z.enum(["true", "false", "1", "0"]).default("true"),
  STRATUS_MASTER_KEY: optional,
  STRATUS_QUEUE_PREFIX: optional,
  STRATUS_GC_GRACE_MS: z.coerce.number().int().min(0).optional(),
  STRATUS_GC_GRACE: optional,
  STRATUS_HANDOFF_TIMEOUT: optional,
  STRATUS_NBD_PUBLIC_HOST: optional,
  STRATUS_NBD_HOST: z.string().min(1).default("127.0.0.1"),
  STRATUS_NBD_PORT: z.coerce.number().int().min(1).max(65535).default(10809),
  // The gateway's off|optional|require (and the older true/false); only require makes the commands TLS.
  // Unset: the gateway's default, require off loopback.
  STRATUS_NBD_TLS: z.enum(["off", "optional", "require", "true", "false", "1", "0"]).optional(),
  AUTH_SECRET: optional,
  STRATUS_PUBLIC_URL: optional,
  STRATUS_MIGRATIONS_DIR: optional,
  STRATUS_KDF_N: z.coerce.number().int().min(1024).optional(),
  STRATUS_TRUSTED_PROXIES: optional,
  STRATUS_SIGNUP: z.enum(["open", "invite"]).optional(),
  STRATUS_WEB_HOST: z.string().min(1).default("127.0.0.1"),
  STRATUS_METRICS_LISTEN: optional,
  STRATUS_METRICS_TOKEN: optional,
});

export interface WebEnv {
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  store:
    | { kind: "directory"; root: string }
    | { kind: "s3"; endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string; forcePathStyle: boolean };
  masterKey: Buffer | undefined;
  /** STRATUS_QUEUE_PREFIX; `next start` requires it (it must match the gateways'). */
  queuePrefix: string | undefined;
  gcGraceMs: number;
  /** How long a cooperative detach waits for the holder (STRATUS_HANDOFF_TIMEOUT, like the gateway's); unset: the verb's 30 s. */
  handoffTimeoutMs: number | undefined;
  nbd: { host: string; port: number; tls: boolean };
  authSecret: string | undefined;
  publicUrl: string | undefined;
  /** packages/db/drizzle (found from the working directory: the bundled app has no path to it). */
  migrationsDir: string;
  /** Lower scrypt cost (tests only). */
  kdfN: number | undefined;
  /** Proxies whose X-Forwarded-For is believed (STRATUS_TRUSTED_PROXIES); none by default. */
  trustedProxies: BlockList | undefined;
  /** STRATUS_SIGNUP when set; otherwise the policy follows where the dashboard is reachable (sign-up-policy.ts). */
  signup: SignUpPolicy | undefined;
  /** STRATUS_WEB_HOST and STRATUS_PUBLIC_URL (if set) are both loopback: nobody else reaches the dashboard. */
  loopbackOnly: boolean;
  /** Where `next start` serves /metrics (STRATUS_METRICS_LISTEN/_TOKEN, as on the gateway); undefined: off. */
  metrics: MetricsListen | undefined;
  /** Settings that work but should be looked at (logged at start). */
  warnings: string[];
}

let cached: WebEnv | undefined;

export function webEnv(): WebEnv {
  if (cached) return cached;
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined && v !== "")));
  if (!parsed.success) {
    throw new Error(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  const e = parsed.data;
  const dataDir = path.resolve(e.STRATUS_DATA_DIR);
  const masterKey = e.STRATUS_MASTER_KEY ? Buffer.from(e.STRATUS_MASTER_KEY.trim(), "base64") : undefined;
  if (masterKey && masterKey.length !== 32) throw new Error("invalid configuration: STRATUS_MASTER_KEY must be 32 bytes in base64");
  const metrics = parseMetricsListen(e.STRATUS_METRICS_LISTEN, e.STRATUS_METRICS_TOKEN);
  if (metrics.problems.length > 0) throw new Error(`invalid configuration: ${metrics.problems.join("; ")}`);
  const s3 = e.STRATUS_S3_ENDPOINT && e.STRATUS_S3_BUCKET && e.STRATUS_S3_ACCESS_KEY_ID && e.STRATUS_S3_SECRET_ACCESS_KEY;
  cached = {
    dataDir,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    store: s3
      ? {
          kind: "s3",
          endpoint: e.STRATUS_S3_ENDPOINT!,
          bucket: e.STRATUS_S3_BUCKET!,
          region: e.STRATUS_S3_REGION,
          accessKeyId: e.STRATUS_S3_ACCESS_KEY_ID!,
          secretAccessKey: e.STRATUS_S3_SECRET_ACCESS_KEY!,
          forcePathStyle: ["true", "1"].includes(e.STRATUS_S3_FORCE_PATH_STYLE),
        }
      : { kind: "directory", root: path.join(dataDir, "bucket") },
    masterKey,
    queuePrefix: e.STRATUS_QUEUE_PREFIX,
    gcGraceMs: e.STRATUS_GC_GRACE_MS ?? parseDurationMs(e.STRATUS_GC_GRACE) ?? 10 * 60_000,
    handoffTimeoutMs: parseHandoffTimeout(e.STRATUS_HANDOFF_TIMEOUT),
    nbd: {
      host: e.STRATUS_NBD_PUBLIC_HOST ?? e.STRATUS_NBD_HOST,
      port: e.STRATUS_NBD_PORT,
      tls: e.STRATUS_NBD_TLS ? ["require", "true", "1"].includes(e.STRATUS_NBD_TLS) : !isLoopbackHost(e.STRATUS_NBD_HOST),
    },
    authSecret: e.AUTH_SECRET,
    publicUrl: e.STRATUS_PUBLIC_URL,
    kdfN: e.STRATUS_KDF_N,
    trustedProxies: parseTrustedProxiesOrThrow(e.STRATUS_TRUSTED_PROXIES),
    signup: e.STRATUS_SIGNUP,
    loopbackOnly: isLoopbackHost(e.STRATUS_WEB_HOST) && (!e.STRATUS_PUBLIC_URL || isLoopbackHost(hostOf(e.STRATUS_PUBLIC_URL))),
    migrationsDir: e.STRATUS_MIGRATIONS_DIR ?? findMigrations(process.cwd()),
    metrics: metrics.metrics,
    warnings: metrics.warnings,
  };
  return cached;
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    throw new Error(`invalid configuration: STRATUS_PUBLIC_URL must be a URL like https://stratus.example.com`);
  }
}

function parseTrustedProxiesOrThrow(text: string | undefined): BlockList | undefined {
  try {
    return parseTrustedProxies(text);
  } catch (error) {
    throw new Error(`invalid configuration: ${(error as Error).message}`, { cause: error });
  }
}

/** The gateway's duration syntax (parseDuration), so one value serves both processes. */
function parseHandoffTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (error) {
    throw new Error(`invalid configuration: STRATUS_HANDOFF_TIMEOUT: ${(error as Error).message}`, { cause: error });
  }
  if (ms < 1) throw new Error("invalid configuration: STRATUS_HANDOFF_TIMEOUT: must be more than 0");
  return ms;
}

function parseDurationMs(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? "s").toLowerCase() as "s"];
  return Math.round(Number(match[1]) * unit);
}

/** `next start` runs in apps/web (or the repo root): look up from there for packages/db/drizzle. */
function findMigrations(from: string): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "packages", "db", "drizzle");
    if (existsSync(path.join(candidate, "meta", "_journal.json"))) return candidate;
    if (path.dirname(dir) === dir) return candidate;
  }
}
