/**
 * STRATUS_METRICS_LISTEN and STRATUS_METRICS_TOKEN, read the same way by the gateway and a dashboard
 * started on its own: where /metrics is served (off unless set; a bare port listens on 127.0.0.1) and
 * the bearer token a scrape must send. Problems are returned as messages that name the variable and
 * never repeat the token.
 */
import { isLoopbackHost } from "../client-address";

export interface MetricsListen {
  host: string;
  port: number;
  /** STRATUS_METRICS_TOKEN; never logged. */
  token: string | undefined;
}

export const MIN_METRICS_TOKEN_LENGTH = 16;

export function parseMetricsListen(
  listen: string | undefined,
  token: string | undefined,
): { metrics: MetricsListen | undefined; problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  if (token !== undefined && token.length < MIN_METRICS_TOKEN_LENGTH)
    problems.push(`STRATUS_METRICS_TOKEN: must be at least ${MIN_METRICS_TOKEN_LENGTH} characters (e.g. \`openssl rand -hex 24\`)`);
  if (listen === undefined) {
    if (token !== undefined) problems.push("STRATUS_METRICS_TOKEN: set, but STRATUS_METRICS_LISTEN is not (metrics are off)");
    return { metrics: undefined, problems, warnings };
  }
  const match = /^(?:(\[[0-9A-Fa-f:.]+\]|[^:[\]]+):)?(\d{1,5})$/.exec(listen.trim());
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || !(port >= 0 && port <= 65535)) {
    problems.push(`STRATUS_METRICS_LISTEN: must be PORT or HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464), got ${JSON.stringify(listen)}`);
    return { metrics: undefined, problems, warnings };
  }
  const host = match[1] === undefined ? "127.0.0.1" : match[1].replace(/^\[|\]$/g, "");
  if (token === undefined && !isLoopbackHost(host))
    warnings.push(`STRATUS_METRICS_LISTEN: /metrics on ${host} answers anyone who reaches it; set STRATUS_METRICS_TOKEN`);
  return { metrics: { host, port, token }, problems, warnings };
}
