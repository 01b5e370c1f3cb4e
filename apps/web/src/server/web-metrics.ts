/**
 * /metrics of a dashboard started on its own (`next start`): prom-client's process metrics (memory,
 * event-loop lag, GC, handles) on STRATUS_METRICS_LISTEN, with the same bearer token rule as the
 * gateway. The embedded dashboard lives in the gateway process, whose /metrics already covers it.
 */
import { createMetricsServer, type MetricsListen } from "@stratus/control";
import { collectDefaultMetrics, Gauge, Registry } from "prom-client";

export interface WebMetrics {
  url: string;
  close(): Promise<void>;
}

export async function startWebMetrics(settings: MetricsListen, onError: (error: unknown) => void): Promise<WebMetrics> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Tells a dashboard process's series from a gateway's on the same Prometheus.
  new Gauge({ name: "stratus_web_process", help: "1: this process is a Stratus dashboard started on its own (next start).", registers: [registry] }).set(1);
  const server = createMetricsServer({ metrics: { render: () => registry.metrics(), contentType: registry.contentType }, token: settings.token, onError });
  let port: number;
  try {
    port = await server.listen(settings.port, settings.host);
  } catch (error) {
    throw new Error(`cannot serve /metrics on ${settings.host}:${settings.port} (STRATUS_METRICS_LISTEN): ${(error as Error).message}`, { cause: error });
  }
  const host = settings.host.includes(":") ? `[${settings.host}]` : settings.host;
  return { url: `http://${host}:${port}/metrics`, close: () => server.close() };
}
