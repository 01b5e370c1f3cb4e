/**
 * The gateway's configuration: read from the environment ONCE, validated, and turned into a typed
 * object that is passed down. Nothing else in the app reads process.env. Every rule that can be
 * checked without touching the network is checked here, so a wrong setting fails at start with a
 * message that names the variable, not later with a stack trace.
 */
import path from "node:path";
import * as z from "zod";
import { createHash } from "node:crypto";
import { isLoopbackHost, parseDuration, parseMetricsListen, parseSize, type MetricsListen } from "@stratus/control";
import { defaultCodecThreads } from "@stratus/storage/codec-pool";
import { mallocSettingsWarning } from "../../bin/gateway-env.mjs";

export interface GatewayConfig {
  dataDir: string;
  nbd: {
    host: string;
    port: number;
    /** The name clients reach NBD by: the server certificate is made for it (and the bind address). */
    publicHost: string;
    tls: NbdTlsConfig;
    /** Connection caps and the idle timeout (the NBD server's options of the same names). */
    limits: { maxConnections: number; maxConnectionsPerAddress: number; maxConnectionsPerCredential: number; idleTimeoutMs: number };
  };
  web: { host: string; port: number };
  database: { kind: "pglite"; dataDir: string } | { kind: "postgres"; url: string };
  store:
    | { kind: "directory"; root: string }
    | {
        kind: "s3";
        endpoint: string;
        bucket: string;
        region: string;
        accessKeyId: string;
        secretAccessKey: string;
        forcePathStyle: boolean;
      };
  /** Target bytes of the local disk cache under <dataDir>/cache, shared by every volume of this gateway. */
  cacheSizeBytes: number;
  /** Bytes of written-but-not-uploaded chunks in this gateway before writes wait for uploads. */
  dirtyLimitBytes: number;
  /** The same, for one volume: a volume that cannot commit leaves the rest room to write. */
  volumeDirtyLimitBytes: number;
  /** Most time between a FLUSH (durability=local) and the cloud commit that follows it. */
  commitIntervalMs: number;
  /** A commit follows once writes paused this long (at most commitIntervalMs). */
  commitIdleMs: number;
  writeBehind: boolean;
  /** How long a superseded chunk generation stays in the bucket before the GC deletes it. */
  gcGraceMs: number;
  /** `redis://…` to use, or undefined: start a private redis-server on a unix socket in the data dir. */
  redisUrl: string | undefined;
  /** BullMQ key prefix: one per gateway (data dir), so gateways and tests sharing a Redis never collide. */
  queuePrefix: string;
  /** Upload jobs this gateway runs at once. */
  uploadConcurrency: number;
  /** Worker threads that seal and open chunks (0: on the event loop). */
  codecThreads: number;
  /**
   * The deployment's master key (32 bytes) from STRATUS_MASTER_KEY, or undefined: read or generate
   * <dataDir>/master.key. It unlocks volumes' auto-unlock key slots.
   */
  masterKey: Buffer | undefined;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** `auto`: readable lines on a terminal, JSON lines otherwise. */
  logFormat: "auto" | "pretty" | "json";
  /** On SIGINT/SIGTERM, how long the cloud commit of open volumes may take before the gateway exits anyway. */
  stopTimeoutMs: number;
  /** Signs dashboard sessions: AUTH_SECRET, or undefined: read or generate <dataDir>/auth-secret. */
  authSecret: string | undefined;
  /** This gateway's id in volume leases: STRATUS_GATEWAY_ID, or undefined: read or generate <dataDir>/gateway-id. */
  gatewayId: string | undefined;
  /** How long a volume lease lasts without a heartbeat (renewed every third of it). */
  leaseTtlMs: number;
  /** How long an open of a held volume waits for its holder to hand it over before it is refused. */
  handoffTimeoutMs: number;
  /** Where /metrics is served (STRATUS_METRICS_LISTEN), or undefined: not at all (the default). */
  metrics?: MetricsConfig;
  /** Settings that work but cost (logged at start), e.g. no GLIBC_TUNABLES. */
  warnings?: string[];
}

/** The Prometheus endpoint: its own address, and the bearer token a scrape must send (if any). */
export type MetricsConfig = MetricsListen;

export const NBD_TLS_MODES = ["off", "optional", "require"] as const;

/**
 * off: no STARTTLS (loopback only). optional: plaintext clients get the local admin's volumes, TLS
 * clients their device credential's (loopback only). require: TLS before anything else.
 */
export interface NbdTlsConfig {
  mode: (typeof NBD_TLS_MODES)[number];
  /** PEM files of a certificate to serve (e.g. from a public CA); absent: one made from the deployment CA. */
  certFile?: string;
  keyFile?: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

const port = z.coerce.number().int().min(0).max(65535);
const size = z.string().transform((text, ctx) => {
  try {
    return parseSize(text);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});
const duration = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});
const bool = z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) => ["true", "1", "yes"].includes(v));

const schema = z.object({
  STRATUS_DATA_DIR: z.string().min(1).default("./.stratus"),
  STRATUS_NBD_HOST: z.string().min(1).default("127.0.0.1"),
  STRATUS_NBD_PORT: port.default(10809),
  STRATUS_NBD_PUBLIC_HOST: z.string().min(1).optional(),
  // Default: require, unless STRATUS_NBD_HOST is a loopback address (then optional).
  STRATUS_NBD_TLS: z.enum(NBD_TLS_MODES).optional(),
  STRATUS_NBD_TLS_CERT: z.string().min(1).optional(),
  STRATUS_NBD_TLS_KEY: z.string().min(1).optional(),
  STRATUS_NBD_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(65_536).default(1024),
  STRATUS_NBD_MAX_CONNECTIONS_PER_ADDRESS: z.coerce.number().int().min(1).max(65_536).default(128),
  STRATUS_NBD_MAX_CONNECTIONS_PER_DEVICE: z.coerce.number().int().min(1).max(65_536).default(32),
  // 0: never. Off by default: a kernel NBD device or a FUSE mount may sit idle for hours, and the
  // clients do not reconnect on their own.
  STRATUS_NBD_IDLE_TIMEOUT: duration.default(0),
  STRATUS_WEB_HOST: z.string().min(1).default("127.0.0.1"),
  STRATUS_WEB_PORT: port.default(3000),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL")
    .optional(),
  STRATUS_S3_ENDPOINT: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
  STRATUS_S3_BUCKET: z.string().min(3).max(63).optional(),
  STRATUS_S3_REGION: z.string().min(1).default("us-east-1"),
  STRATUS_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  STRATUS_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  STRATUS_S3_FORCE_PATH_STYLE: bool.default(true),
  STRATUS_CACHE_SIZE: size.default(20 * 2 ** 30),
  // Large enough that a burst of random writes (each dirties a whole chunk) is absorbed by the
  // local disk rather than waiting on uploads; data past the limit waits, it is never dropped.
  // Default: 2G, or half the cache when the cache is smaller than 4G.
  STRATUS_DIRTY_LIMIT: size.optional(),
  STRATUS_VOLUME_DIRTY_LIMIT: size.optional(),
  // Under sustained writing a commit at most every 30 s (like Linux's dirty_expire): each commit
  // re-uploads every chunk touched since the last, so a short interval multiplies PUTs (on S3, a
  // 1 GiB region rewritten by random writes is 1024 PUTs per commit) and competes with the writes.
  // Bursts do not wait that long: STRATUS_COMMIT_IDLE after writes pause, the commit follows.
  STRATUS_COMMIT_INTERVAL: duration.default(30_000),
  // Default: 2s, or the interval when that is shorter.
  STRATUS_COMMIT_IDLE: duration.optional(),
  STRATUS_GC_GRACE: duration.default(10 * 60_000),
  // Upload the chunks a sequential writer finished before their commit (see storage's write-behind.ts).
  STRATUS_WRITE_BEHIND: bool.default(true),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
    .optional(),
  STRATUS_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 letters, digits, '_', '.' or '-'")
    .optional(),
  STRATUS_UPLOAD_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
  STRATUS_CODEC_THREADS: z.coerce.number().int().min(0).max(64).default(defaultCodecThreads()),
  STRATUS_MASTER_KEY: z
    .string()
    .transform((text, ctx) => {
      const key = Buffer.from(text.trim(), "base64");
      // Not echoed: the message must never carry the key.
      if (key.length !== 32 || key.toString("base64") !== text.trim()) {
        ctx.addIssue({ code: "custom", message: "must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)" });
        return z.NEVER;
      }
      return key;
    })
    .optional(),
  STRATUS_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  STRATUS_LOG_FORMAT: z.enum(["auto", "pretty", "json"]).default("auto"),
  // What is not committed by then stays in the local cache (fsynced) and is committed at the next start.
  STRATUS_STOP_TIMEOUT: duration.default(10_000),
  STRATUS_GATEWAY_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "must be 1-64 letters, digits, '_', '.', ':' or '-'")
    .optional(),
  // A gateway that stops renewing (killed, partitioned) keeps its volumes this long; one that cannot
  // renew for this long stops serving them.
  STRATUS_LEASE_TTL: duration.default(30_000),
  // How long a device asking for a held volume waits for the holder to flush, commit and let go.
  STRATUS_HANDOFF_TIMEOUT: duration.default(30_000),
  // Off unless set: `9464` (on 127.0.0.1), `127.0.0.1:9464`, `0.0.0.0:9464` or `[::]:9464`.
  STRATUS_METRICS_LISTEN: z.string().min(1).optional(),
  STRATUS_METRICS_TOKEN: z.string().min(1).optional(),
  AUTH_SECRET: z.string().min(32, "must be at least 32 characters (e.g. `openssl rand -base64 32`)").optional(),
});

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  // Empty strings count as unset: `STRATUS_S3_ENDPOINT= npm start` should mean "no S3".
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ""));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];

  // Anyone who reaches a network address can try to connect: there, NBD is TLS from the first option
  // on, each client proving a device credential. Plaintext stays on loopback (the local admin's CLI).
  const loopbackNbd = isLoopbackHost(e.STRATUS_NBD_HOST);
  const tlsMode = e.STRATUS_NBD_TLS ?? (loopbackNbd ? "optional" : "require");
  if (!loopbackNbd && tlsMode !== "require") {
    problems.push(
      `STRATUS_NBD_TLS: ${tlsMode} serves NBD without TLS on ${e.STRATUS_NBD_HOST}, which is not a loopback address; use require (the default there)`,
    );
  }
  if ((e.STRATUS_NBD_TLS_CERT === undefined) !== (e.STRATUS_NBD_TLS_KEY === undefined)) {
    problems.push("STRATUS_NBD_TLS_CERT and STRATUS_NBD_TLS_KEY go together: set both or neither");
  }
  if (tlsMode === "off" && e.STRATUS_NBD_TLS_CERT !== undefined) problems.push("STRATUS_NBD_TLS_CERT: set, but STRATUS_NBD_TLS is off");
  const dirtyLimit = e.STRATUS_DIRTY_LIMIT ?? Math.min(2 * 2 ** 30, Math.floor(e.STRATUS_CACHE_SIZE / 2));
  if (dirtyLimit < 2 ** 20) problems.push("STRATUS_DIRTY_LIMIT: must be at least 1M");
  if (e.STRATUS_CACHE_SIZE < dirtyLimit) problems.push("STRATUS_CACHE_SIZE: must be at least STRATUS_DIRTY_LIMIT");
  const volumeDirtyLimit = e.STRATUS_VOLUME_DIRTY_LIMIT ?? Math.floor((dirtyLimit * 3) / 4);
  if (volumeDirtyLimit < 2 ** 20) problems.push("STRATUS_VOLUME_DIRTY_LIMIT: must be at least 1M");
  if (volumeDirtyLimit > dirtyLimit) problems.push("STRATUS_VOLUME_DIRTY_LIMIT: must not be more than STRATUS_DIRTY_LIMIT");
  if (e.STRATUS_COMMIT_INTERVAL < 100) problems.push("STRATUS_COMMIT_INTERVAL: must be at least 100ms");
  const commitIdle = e.STRATUS_COMMIT_IDLE ?? Math.min(2_000, e.STRATUS_COMMIT_INTERVAL);
  if (commitIdle < 100) problems.push("STRATUS_COMMIT_IDLE: must be at least 100ms");
  if (e.STRATUS_LEASE_TTL < 1_000) problems.push("STRATUS_LEASE_TTL: must be at least 1s");
  if (commitIdle > e.STRATUS_COMMIT_INTERVAL) problems.push("STRATUS_COMMIT_IDLE: must not be longer than STRATUS_COMMIT_INTERVAL");

  const dataDir = path.resolve(e.STRATUS_DATA_DIR);
  let store: GatewayConfig["store"] = { kind: "directory", root: path.join(dataDir, "bucket") };
  if (e.STRATUS_S3_ENDPOINT) {
    const missing = (["STRATUS_S3_BUCKET", "STRATUS_S3_ACCESS_KEY_ID", "STRATUS_S3_SECRET_ACCESS_KEY"] as const).filter((name) => !e[name]);
    if (missing.length > 0) {
      problems.push(`STRATUS_S3_ENDPOINT is set, so ${missing.join(", ")} must be set too`);
    } else {
      store = {
        kind: "s3",
        endpoint: e.STRATUS_S3_ENDPOINT,
        bucket: e.STRATUS_S3_BUCKET!,
        region: e.STRATUS_S3_REGION,
        accessKeyId: e.STRATUS_S3_ACCESS_KEY_ID!,
        secretAccessKey: e.STRATUS_S3_SECRET_ACCESS_KEY!,
        forcePathStyle: e.STRATUS_S3_FORCE_PATH_STYLE,
      };
    }
  }
  const metricsSettings = parseMetricsListen(e.STRATUS_METRICS_LISTEN, e.STRATUS_METRICS_TOKEN);
  const metrics = metricsSettings.metrics;
  problems.push(...metricsSettings.problems);
  if (problems.length > 0) throw new ConfigError(problems);

  const warnings = [mallocSettingsWarning(env, process.platform), ...metricsSettings.warnings];

  return {
    dataDir,
    nbd: {
      host: e.STRATUS_NBD_HOST,
      port: e.STRATUS_NBD_PORT,
      publicHost: e.STRATUS_NBD_PUBLIC_HOST ?? e.STRATUS_NBD_HOST,
      tls: {
        mode: tlsMode,
        ...(e.STRATUS_NBD_TLS_CERT !== undefined ? { certFile: path.resolve(e.STRATUS_NBD_TLS_CERT), keyFile: path.resolve(e.STRATUS_NBD_TLS_KEY!) } : {}),
      },
      limits: {
        maxConnections: e.STRATUS_NBD_MAX_CONNECTIONS,
        maxConnectionsPerAddress: e.STRATUS_NBD_MAX_CONNECTIONS_PER_ADDRESS,
        maxConnectionsPerCredential: e.STRATUS_NBD_MAX_CONNECTIONS_PER_DEVICE,
        idleTimeoutMs: e.STRATUS_NBD_IDLE_TIMEOUT,
      },
    },
    web: { host: e.STRATUS_WEB_HOST, port: e.STRATUS_WEB_PORT },
    database: e.DATABASE_URL ? { kind: "postgres", url: e.DATABASE_URL } : { kind: "pglite", dataDir: path.join(dataDir, "db") },
    store,
    cacheSizeBytes: e.STRATUS_CACHE_SIZE,
    dirtyLimitBytes: dirtyLimit,
    volumeDirtyLimitBytes: volumeDirtyLimit,
    commitIntervalMs: e.STRATUS_COMMIT_INTERVAL,
    commitIdleMs: commitIdle,
    writeBehind: e.STRATUS_WRITE_BEHIND,
    gcGraceMs: e.STRATUS_GC_GRACE,
    redisUrl: e.REDIS_URL,
    queuePrefix: e.STRATUS_QUEUE_PREFIX ?? `stratus-${createHash("sha256").update(dataDir).digest("hex").slice(0, 12)}`,
    uploadConcurrency: e.STRATUS_UPLOAD_CONCURRENCY,
    codecThreads: e.STRATUS_CODEC_THREADS,
    masterKey: e.STRATUS_MASTER_KEY,
    logLevel: e.STRATUS_LOG_LEVEL,
    logFormat: e.STRATUS_LOG_FORMAT,
    stopTimeoutMs: e.STRATUS_STOP_TIMEOUT,
    authSecret: e.AUTH_SECRET,
    gatewayId: e.STRATUS_GATEWAY_ID,
    leaseTtlMs: e.STRATUS_LEASE_TTL,
    handoffTimeoutMs: e.STRATUS_HANDOFF_TIMEOUT,
    metrics,
    warnings: warnings.filter((warning): warning is string => warning !== undefined),
  };
}

/** What the CLI needs to reach a running server. */
export interface ClientConfig {
  url: string;
  token: string | undefined;
  tokenFile: string;
  /** The server is on this machine: only then may the local token file be sent to it. */
  loopback: boolean;
  /** Its plaintext NBD listener on loopback (STRATUS_NBD_HOST/PORT), for image import and export. */
  localNbd: { host: string; port: number };
}

/**
 * Where the CLI sends requests. A token crosses the network only over https: a plain-http STRATUS_URL
 * to another machine is refused unless the user said `--insecure`.
 */
export function loadClientConfig(env: NodeJS.ProcessEnv = process.env, options: { insecure?: boolean } = {}): ClientConfig {
  const dataDir = path.resolve(env.STRATUS_DATA_DIR || "./.stratus");
  const webPort = env.STRATUS_WEB_PORT || "3000";
  const url = (env.STRATUS_URL || `http://127.0.0.1:${webPort}`).replace(/\/+$/, "");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError([`STRATUS_URL must be an http:// or https:// URL (got ${JSON.stringify(url)})`]);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new ConfigError([`STRATUS_URL must be an http:// or https:// URL (got ${parsed.protocol})`]);
  const loopback = isLoopbackHost(parsed.hostname);
  if (parsed.protocol === "http:" && !loopback && !options.insecure) {
    throw new ConfigError([
      `STRATUS_URL ${parsed.origin} is plain http to another machine: the API token would cross the network readable; use https://, or pass --insecure to send it anyway`,
    ]);
  }
  const nbdHost = env.STRATUS_NBD_HOST && isLoopbackHost(env.STRATUS_NBD_HOST) ? env.STRATUS_NBD_HOST : "127.0.0.1";
  const localNbd = { host: nbdHost, port: Number(env.STRATUS_NBD_PORT || 10809) };
  return { url, token: env.STRATUS_TOKEN || undefined, tokenFile: path.join(dataDir, "cli-token"), loopback, localNbd };
}
