/**
 * What every verb receives: the runtime (database, object store, queues, Redis, master key, settings)
 * and the actor it acts for. Verbs authorise by owner: another user's volume or token is NOT_FOUND
 * (its existence is not revealed), and a read-only token trying to change something is FORBIDDEN.
 */
import type { Database } from "@stratus/db";
import type { ObjectStore, ScryptCost } from "@stratus/storage";
import type { Redis } from "ioredis";
import type { JobQueues } from "./jobs/queues";
import { ServiceError } from "./errors";

export interface MasterKey {
  key: Buffer;
  /** sha256(key) prefix: safe to log; stored in auto-unlock slots. */
  id: string;
}

/** The logging surface verbs need (pino's Logger satisfies it). */
export interface VerbLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

export interface RuntimeSettings {
  /** Key prefix in Redis for queues, live state, unlock grants and rate limits (STRATUS_QUEUE_PREFIX). */
  prefix: string;
  /** How long superseded generations stay before GC deletes them (STRATUS_GC_GRACE). */
  gcGraceMs: number;
  /** Where clients reach NBD, for attach commands. */
  nbd: { host: string; port: number; tls: boolean };
  /** scrypt cost of new passphrase slots and password hashes (tests lower it). */
  kdf?: ScryptCost;
  /** The embedded default: the first account claims the local admin (CLI) user. */
  embedded: boolean;
  /** How long a cooperative detach waits for the holder to let go (STRATUS_HANDOFF_TIMEOUT; default 30 s). */
  handoffTimeoutMs?: number;
}

export interface Runtime {
  database: Database;
  /** The store as the engines see it (retrying). */
  store: ObjectStore;
  queues: JobQueues;
  masterKey: MasterKey;
  redis: Redis;
  config: RuntimeSettings;
  logger: VerbLogger;
  /**
   * The gateway running in this process (the embedded default), if any: the orphan sets on its disk can
   * be exported from here. Absent in a web process of its own (`next start`).
   */
  localGateway?: { gatewayId: string; cacheDir: string };
}

export type ActorVia = "session" | "token" | "local";
export type Scope = "read" | "write";

export interface Actor {
  userId: string;
  via: ActorVia;
  scope: Scope;
  /** The API token used, when via = token. */
  tokenId?: string;
}

export interface RequestMeta {
  ip?: string;
  userAgent?: string;
}

export interface ServiceContext {
  runtime: Runtime;
  actor: Actor;
  requestMeta?: RequestMeta;
}

/** Context for the verbs that run before anyone is signed in (sign up, sign in). */
export interface AnonymousContext {
  runtime: Runtime;
  requestMeta?: RequestMeta;
}

/** Every state-changing verb starts with this. */
export function requireWrite(ctx: ServiceContext): void {
  if (ctx.actor.scope !== "write") throw new ServiceError("FORBIDDEN", "this API token is read-only");
}
