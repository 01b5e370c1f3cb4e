/**
 * Issue 23, acceptance 4: a real gateway with /metrics on (STRATUS_METRICS_LISTEN, a bearer token),
 * scraped during and after fio writes and reads a known number of bytes, each scrape parsed with a
 * strict Prometheus text-format parser. The volume's counters rise by what fio did (within 5%), the
 * latency histograms have samples, the store counted the commit's PUTs, and a wrong token gets 401.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePrometheusText, sampleValue, scrapeMetrics, type PromFamily } from "@stratus/control/testing/prometheus-text";
import { createVolume, describeLogs, freePort, MiB, runFio, startGateway, waitForCommitted, type Gateway } from "../harness";

const TOKEN = "e2e-metrics-token-5f2a9c81d4";
const SIZE = 32 * MiB;

let gateway: Gateway;
let work: string;
let metricsUrl: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-metrics-"));
  const port = await freePort();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  gateway = await startGateway({ env: { STRATUS_METRICS_LISTEN: `127.0.0.1:${port}`, STRATUS_METRICS_TOKEN: TOKEN, STRATUS_COMMIT_INTERVAL: "1s" } });
});

afterAll(async () => {
  await gateway?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

async function withLogs<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof Error && gateway) err.message += `\n${describeLogs(gateway.logs())}`;
    throw err;
  }
}

/** A sample's value, 0 when the series does not exist yet (a volume never opened has none). */
function value(families: Map<string, PromFamily>, family: string, labels: Record<string, string>, name = family): number {
  return sampleValue(families, family, name, labels) ?? 0;
}

function fio(name: string, rw: "write" | "read"): ReturnType<typeof runFio> {
  return runFio(
    [`--name=${rw}`, "--ioengine=nbd", `--uri=${gateway.uri(name)}`, `--rw=${rw}`, "--bs=64k", "--iodepth=8", `--size=${SIZE}`],
    path.join(work, `${rw}.json`),
    60_000,
  );
}

describe("/metrics on a running gateway", () => {
  it("refuses a scrape without the token or with a wrong one", async () => {
    expect((await fetch(metricsUrl)).status).toBe(401);
    expect((await fetch(metricsUrl, { headers: { authorization: "Bearer not-the-token-at-all" } })).status).toBe(401);
    // The token is never logged.
    expect(JSON.stringify(gateway.logs())).not.toContain(TOKEN);
  });

  it("counters rise by what fio wrote and read (within 5%), and the histograms have samples", () =>
    withLogs(async () => {
      const volume = await createVolume(gateway, "metered", { size: "64M", chunkSize: "1M" });
      const vol = { volume: volume.id };
      const before = await scrapeMetrics(metricsUrl, TOKEN);

      // Scraped while fio writes: every scrape parses, whatever the engine is doing.
      const writing = fio("metered", "write");
      let during = 0;
      let finished = false;
      void writing.finally(() => (finished = true)).catch(() => undefined);
      while (!finished) {
        parsePrometheusText(await (await fetch(metricsUrl, { headers: { authorization: `Bearer ${TOKEN}` } })).text());
        during++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const [write] = await writing;
      await waitForCommitted(gateway, "metered");
      const [read] = await fio("metered", "read");
      expect(write!.error).toBe(0);
      expect(read!.error).toBe(0);
      expect(write!.write.io_bytes).toBe(SIZE);
      expect(read!.read.io_bytes).toBe(SIZE);
      expect(during).toBeGreaterThan(0);

      const after = await scrapeMetrics(metricsUrl, TOKEN);
      const rise = (family: string, labels: Record<string, string> = vol, name = family) =>
        value(after, family, labels, name) - value(before, family, labels, name);
      const within5 = (actual: number, expected: number) => {
        expect(actual).toBeGreaterThanOrEqual(expected * 0.95);
        expect(actual).toBeLessThanOrEqual(expected * 1.05);
      };
      within5(rise("stratus_volume_written_bytes_total"), write!.write.io_bytes);
      within5(rise("stratus_volume_read_bytes_total"), read!.read.io_bytes);
      within5(rise("stratus_volume_write_operations_total"), SIZE / (64 * 1024));
      within5(rise("stratus_volume_read_operations_total"), SIZE / (64 * 1024));

      const histogram = "stratus_volume_request_duration_seconds";
      expect(after.get(histogram)?.type).toBe("histogram");
      within5(rise(histogram, { ...vol, command: "write" }, `${histogram}_count`), SIZE / (64 * 1024));
      within5(rise(histogram, { ...vol, command: "read" }, `${histogram}_count`), SIZE / (64 * 1024));
      expect(rise(histogram, { ...vol, command: "read", le: "+Inf" }, `${histogram}_bucket`)).toBe(
        rise(histogram, { ...vol, command: "read" }, `${histogram}_count`),
      );
      expect(rise(histogram, { ...vol, command: "write" }, `${histogram}_sum`)).toBeGreaterThan(0);

      // The commit sent the written data to the bucket (sealed and compressed fio data is not much smaller).
      expect(rise("stratus_store_requests_total", { operation: "put" })).toBeGreaterThanOrEqual(SIZE / MiB);
      expect(rise("stratus_store_bytes_total", { operation: "put" })).toBeGreaterThan(0);
      // Process metrics: event-loop lag and memory.
      expect(after.has("nodejs_eventloop_lag_seconds")).toBe(true);
      expect(value(after, "process_resident_memory_bytes", {})).toBeGreaterThan(0);
    }));
});
