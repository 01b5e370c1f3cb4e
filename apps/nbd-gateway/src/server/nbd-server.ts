/**
 * The NBD server: accepts TCP connections within the connection caps (in total, per address, per
 * credential) and runs each as an `NbdConnection`. With `tls`, a client may (optional) or must
 * (require) upgrade with NBD_OPT_STARTTLS; connections of a credential that `tls.unusable` later
 * reports (revoked, expired) are closed at the next check.
 */
import net from "node:net";
import { NbdConnection } from "./connection";
import { readAcceptedSocket } from "./socket-reads";
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  DEFAULT_MAX_CONNECTIONS_PER_CREDENTIAL,
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_RECHECK_INTERVAL_MS,
  DEFAULT_WRITE_BUDGET_BYTES,
  systemClock,
  type NbdServerOptions,
  type ResolvedOptions,
} from "./server-options";
import { TlsUpgrader } from "./tls-upgrade";
import { WriteBudget } from "./write-budget";
import { sharedTurnBudget } from "./turn-budget";

export { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_MAX_PAYLOAD } from "./server-options";
export type { AuthorizedClient, NbdServerOptions, NbdServerTlsOptions, ServerClock } from "./server-options";

export interface NbdServer {
  listen(port: number, host: string): Promise<{ port: number }>;
  /** WRITE payload bytes in memory across all connections, and the most ever (diagnostics, tests). */
  readonly writeBudget: Pick<WriteBudget, "usedBytes" | "peakBytes" | "limitBytes">;
  /** Closes the connections whose credential is no longer usable; returns how many (also runs on a timer). */
  recheckCredentials(): Promise<number>;
  /** Stops accepting, ends every connection after its in-flight requests, releases exports. */
  close(): Promise<void>;
}

export function createNbdServer(options: NbdServerOptions): NbdServer {
  const resolved: ResolvedOptions = {
    handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
    maxPayload: DEFAULT_MAX_PAYLOAD,
    maxInFlightBytes: 128 * 1024 * 1024,
    maxInFlightRequests: 512,
    turnBudget: sharedTurnBudget,
    maxConnections: DEFAULT_MAX_CONNECTIONS,
    maxConnectionsPerAddress: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    maxConnectionsPerCredential: DEFAULT_MAX_CONNECTIONS_PER_CREDENTIAL,
    idleTimeoutMs: 0,
    clock: systemClock,
    writeBudgetBytes: DEFAULT_WRITE_BUDGET_BYTES,
    ...options,
    writeBudget: new WriteBudget(options.writeBudgetBytes ?? DEFAULT_WRITE_BUDGET_BYTES),
    tls: options.tls && { ...options.tls, upgrader: new TlsUpgrader(options.tls) },
    connectionsOf: (credentialId) => [...connections].filter((c) => c.credentialId === credentialId).length,
  };
  if (!Number.isInteger(resolved.maxPayload) || resolved.maxPayload < 4096 || resolved.maxPayload > 0xffff_fff0) {
    throw new RangeError(`maxPayload must be an integer between 4096 and 2^32 - 16, got ${resolved.maxPayload}`);
  }
  const logger = options.logger.child({ component: "nbd-server" });
  const connections = new Set<NbdConnection>();
  const perAddress = new Map<string, number>();
  let nextId = 1;
  let lastCapWarning = 0;

  const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
    // Caps first, before a byte is read or a greeting written: a flood costs an accept and a close.
    const address = accepted.remoteAddress ?? "unknown";
    const fromAddress = perAddress.get(address) ?? 0;
    if (connections.size >= resolved.maxConnections || fromAddress >= resolved.maxConnectionsPerAddress) {
      const now = resolved.clock.now();
      if (now - lastCapWarning > 10_000) {
        lastCapWarning = now;
        logger.warn({ address, total: connections.size, fromAddress }, "nbd connection cap reached, refusing connections");
      }
      accepted.destroy();
      return;
    }
    perAddress.set(address, fromAddress + 1);
    // Bytes cannot arrive before this callback returns, so `connection` is set by then (the first
    // read's buffer is chosen while the socket is made: the shared one).
    const made: { connection?: NbdConnection } = {};
    const socket = readAcceptedSocket(accepted, (chunk, transient) => made.connection!.onBytes(chunk, transient), {
      next: () => made.connection?.nextReadTarget(),
      onTargetRead: (bytes) => made.connection!.onTargetRead(bytes),
    });
    const opened = new NbdConnection(socket, resolved, logger.child({ connection: nextId++, remote: `${socket.remoteAddress}:${socket.remotePort}` }));
    made.connection = opened;
    connections.add(opened);
    void opened.done
      .catch((err: unknown) => logger.error({ err }, "nbd connection crashed"))
      .finally(() => {
        connections.delete(opened);
        const left = (perAddress.get(address) ?? 1) - 1;
        if (left > 0) perAddress.set(address, left);
        else perAddress.delete(address);
      });
  });

  let rechecking: Promise<number> | undefined;
  const recheckCredentials = (): Promise<number> => {
    rechecking ??= (async () => {
      const byCredential = new Map<string, NbdConnection[]>();
      for (const connection of connections) {
        if (connection.credentialId === undefined) continue;
        byCredential.set(connection.credentialId, [...(byCredential.get(connection.credentialId) ?? []), connection]);
      }
      if (byCredential.size === 0 || !resolved.tls) return 0;
      let closed = 0;
      for (const id of await resolved.tls.unusable([...byCredential.keys()])) {
        for (const connection of byCredential.get(id) ?? []) {
          connection.revoke();
          closed++;
        }
      }
      return closed;
    })().finally(() => (rechecking = undefined));
    return rechecking;
  };
  const recheckTimer = resolved.tls
    ? setInterval(() => {
        recheckCredentials().catch((err: unknown) => logger.warn({ err }, "checking open connections' credentials failed"));
      }, resolved.tls.recheckIntervalMs ?? DEFAULT_RECHECK_INTERVAL_MS).unref()
    : undefined;

  return {
    writeBudget: resolved.writeBudget,
    recheckCredentials,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          const address = server.address() as net.AddressInfo;
          logger.info({ host, port: address.port }, "nbd server listening");
          resolve({ port: address.port });
        });
      });
    },
    async close() {
      clearInterval(recheckTimer);
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of connections) connection.shutdown();
      await Promise.all([...connections].map((c) => c.done));
      await stopped;
    },
  };
}
