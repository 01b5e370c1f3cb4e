/** The NBD server's options, their defaults, and the clock it keeps time with. */
import type { Logger } from "pino";
import type { ExportRegistry } from "./export-registry";
import type { PresentedCredential, TlsServerCredentials, TlsUpgrader } from "./tls-upgrade";
import type { TurnBudget } from "./turn-budget";
import type { WriteBudget } from "./write-budget";

/** A TLS client the authority accepted. */
export interface AuthorizedClient {
  /** Checked again every `recheckIntervalMs` while the connection lasts. */
  credentialId: string;
  /** What this client may list and open. */
  registry: ExportRegistry;
}

export interface NbdServerTlsOptions extends TlsServerCredentials {
  /** require: FORCEDTLS for every connection; optional: plaintext clients see `registry`. */
  mode: "optional" | "require";
  /** The client a completed TLS handshake proved, or undefined to refuse it (the session ends). */
  authorize(presented: PresentedCredential): Promise<AuthorizedClient | undefined>;
  /** Of these credential ids, the ones that may no longer be used (their connections are closed). */
  unusable(credentialIds: string[]): Promise<string[]>;
  /** How often open connections' credentials are checked (default 2 s). */
  recheckIntervalMs?: number;
}

export interface NbdServerOptions {
  /** What a plaintext client may list and open (never consulted when TLS is required). */
  registry: ExportRegistry;
  tls?: NbdServerTlsOptions;
  logger: Logger;
  /** Time a client has to finish the handshake (default 30 s). */
  handshakeTimeoutMs?: number;
  /** Largest READ/WRITE length, advertised as the maximum block size (default 32 MiB). */
  maxPayload?: number;
  /** Request bytes in flight per connection before the server stops reading (default 128 MiB). */
  maxInFlightBytes?: number;
  /** Requests in flight per connection before the server stops reading (default 512). */
  maxInFlightRequests?: number;
  /** Request bytes all connections take in per event-loop turn (default: turn-budget.ts, shared). */
  turnBudget?: TurnBudget;
  /** Connections at once: in total, from one address, per device credential (defaults 1024, 128, 32). */
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
  maxConnectionsPerCredential?: number;
  /** WRITE payload bytes in memory across all connections (default 512 MiB). */
  writeBudgetBytes?: number;
  /** A connection in transmission with no request for this long is closed (0: never, the default). */
  idleTimeoutMs?: number;
  /** Time as the server sees it: handshake and idle timeouts (tests drive it). */
  clock?: ServerClock;
}

export interface ServerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: ServerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export const DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;
export const DEFAULT_RECHECK_INTERVAL_MS = 2_000;
export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_WRITE_BUDGET_BYTES = 512 * 1024 * 1024;
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 128;
export const DEFAULT_MAX_CONNECTIONS_PER_CREDENTIAL = 32;

/** The options with every default filled in, and what the server shares with its connections. */
export type ResolvedOptions = Required<Omit<NbdServerOptions, "tls">> & {
  tls: (NbdServerTlsOptions & { upgrader: TlsUpgrader }) | undefined;
  /** Open connections already authorized with this credential. */
  connectionsOf(credentialId: string): number;
  writeBudget: WriteBudget;
};
