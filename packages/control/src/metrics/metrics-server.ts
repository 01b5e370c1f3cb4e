/**
 * Serves GET /metrics for the gateway and for a dashboard started on its own, on a listen address of its
 * own (STRATUS_METRICS_LISTEN), apart from the dashboard and NBD, so a firewall or a Prometheus network
 * policy can treat it alone. With a token
 * (STRATUS_METRICS_TOKEN) a scrape must send `Authorization: Bearer <token>`; anything else gets 401.
 * The token is compared in constant time and never logged.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface MetricsSource {
  render(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServer {
  server: Server;
  /** Binds; resolves to the port (0 picks a free one). */
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

export function createMetricsServer(options: { metrics: MetricsSource; token?: string; onError?: (error: unknown) => void }): MetricsServer {
  const expected = options.token === undefined ? undefined : digest(options.token);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://metrics");
    if (url.pathname !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: the metrics are at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    if (expected !== undefined && !authorized(req, expected)) {
      res
        .writeHead(401, { "www-authenticate": 'Bearer realm="stratus metrics"', "content-type": "text/plain" })
        .end("unauthorized: send the metrics bearer token\n");
      return;
    }
    options.metrics.render().then(
      (text) => {
        res.writeHead(200, { "content-type": options.metrics.contentType, "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (error: unknown) => {
        options.onError?.(error);
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end("collecting metrics failed\n");
      },
    );
  });
  server.keepAliveTimeout = 5_000;
  return {
    server,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Hashes first, so the comparison takes the same time whatever the lengths. */
function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function authorized(req: IncomingMessage, expected: Buffer): boolean {
  const header = req.headers.authorization;
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match !== null && timingSafeEqual(digest(match[1]!), expected);
}
