/**
 * A dashboard on its own serves process metrics on STRATUS_METRICS_LISTEN: parsed with the strict
 * text-format parser, and refused without its bearer token.
 */
import { parseMetricsListen } from "@stratus/control";
import { scrapeMetrics } from "@stratus/control/testing/prometheus-text";
import { describe, expect, it } from "vitest";
import { startWebMetrics } from "./web-metrics";

const TOKEN = "web-metrics-token-7d1e33a0";

describe("web process /metrics", () => {
  it("serves the process metrics with the bearer token, and 401 without it", async () => {
    const { metrics } = parseMetricsListen("127.0.0.1:0", TOKEN);
    const served = await startWebMetrics(metrics!, () => undefined);
    try {
      expect((await fetch(served.url)).status).toBe(401);
      expect((await fetch(served.url, { headers: { authorization: "Bearer wrong-token-wrong" } })).status).toBe(401);
      const families = await scrapeMetrics(served.url, TOKEN);
      expect(families.get("stratus_web_process")?.samples[0]?.value).toBe(1);
      expect(families.has("nodejs_eventloop_lag_seconds")).toBe(true);
      expect(families.get("process_resident_memory_bytes")?.samples[0]?.value).toBeGreaterThan(0);
    } finally {
      await served.close();
    }
  });

  it("refuses a port already taken, naming the setting", async () => {
    const { metrics } = parseMetricsListen("127.0.0.1:0", undefined);
    const first = await startWebMetrics(metrics!, () => undefined);
    try {
      const port = Number(new URL(first.url).port);
      await expect(startWebMetrics({ ...metrics!, port }, () => undefined)).rejects.toThrow(/STRATUS_METRICS_LISTEN/);
    } finally {
      await first.close();
    }
  });
});
