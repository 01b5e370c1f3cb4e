/**
 * /metrics end to end inside one process: a real Volume behind the counting device and a counting
 * store, the registry, and the HTTP server, scraped and parsed with a strict text-format parser. Then
 * the bearer token, and the label bound: 1,000 volumes make at most 1,000 label values per metric.
 */
import { readFile } from "node:fs/promises";
import { CountingObjectStore, MemoryObjectStore, Volume } from "@stratus/storage";
import { MemoryChunkIndex } from "@stratus/storage/testing";
import { afterEach, describe, expect, it } from "vitest";
import { countingDevice } from "../engine/counting-device";
import { createMetricsServer, type MetricsServer } from "@stratus/control";
import { parsePrometheusText, sampleValue, scrapeMetrics } from "@stratus/control/testing/prometheus-text";
import { GatewayMetrics, newStoreRetries, retriedOperation, type MeteredEngine } from "./gateway-metrics";
import { VolumeMeters } from "./volume-meters";

const CHUNK = 64 * 1024;
const TOKEN = "metrics-test-token-0123456789";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(metrics: GatewayMetrics, token?: string): Promise<string> {
  const server: MetricsServer = createMetricsServer({ metrics, token });
  const port = await server.listen(0, "127.0.0.1");
  cleanups.push(() => server.close());
  return `http://127.0.0.1:${port}/metrics`;
}

describe("gateway metrics", () => {
  it("counts what a volume served and what reached the store, in a text a strict parser accepts", async () => {
    const store = new CountingObjectStore(new MemoryObjectStore());
    const volume = await Volume.open({
      volumeId: "vol_metrics1",
      size: 16 * CHUNK,
      chunkSize: CHUNK,
      store,
      index: new MemoryChunkIndex(),
      writeBehind: false,
    });
    cleanups.push(() => volume.close());
    const meters = new VolumeMeters();
    const device = countingDevice(volume, meters.meterFor(volume.volumeId));
    const engine: MeteredEngine = { volumeId: volume.volumeId, volume, connections: 1 };
    const retries = newStoreRetries();
    const metrics = new GatewayMetrics({
      gatewayId: "gw-test",
      meters,
      openEngines: async () => [engine],
      openVolumeIds: () => [volume.volumeId],
      store: { counters: store.counters, retries },
      codecPool: { size: 2, load: () => ({ busyWorkers: 1, requests: 3 }) },
    });
    const url = await serve(metrics);

    const before = await scrapeMetrics(url);
    expect(sampleValue(before, "stratus_volume_written_bytes_total", "stratus_volume_written_bytes_total", { volume: "vol_metrics1" })).toBe(0);

    const data = Buffer.alloc(4 * CHUNK, 7);
    await device.write(0, data);
    await device.flush(); // cloud durability: commits, so the store gets PUTs
    const target = Buffer.alloc(3 * CHUNK);
    await device.read(CHUNK, target);
    const op = retriedOperation("put vol/x/0001");
    if (op !== undefined) retries[op]++;

    const after = await scrapeMetrics(url);
    const value = (family: string, labels: Record<string, string> = {}, name = family) => sampleValue(after, family, name, labels);
    const vol = { volume: "vol_metrics1" };
    expect(value("stratus_volume_written_bytes_total", vol)).toBe(4 * CHUNK);
    expect(value("stratus_volume_read_bytes_total", vol)).toBe(3 * CHUNK);
    expect(value("stratus_volume_write_operations_total", vol)).toBe(1);
    expect(value("stratus_volume_read_operations_total", vol)).toBe(1);
    const histogram = "stratus_volume_request_duration_seconds";
    expect(after.get(histogram)?.type).toBe("histogram");
    expect(value(histogram, { ...vol, command: "write" }, `${histogram}_count`)).toBe(1);
    expect(value(histogram, { ...vol, command: "flush" }, `${histogram}_count`)).toBe(1);
    expect(value(histogram, { ...vol, command: "read", le: "+Inf" }, `${histogram}_bucket`)).toBe(1);
    expect(value("stratus_volume_commits_total", vol)).toBe(1);
    expect(value("stratus_volume_last_commit_age_seconds", vol)).toBeGreaterThanOrEqual(0);
    // Three chunk pieces read, each a hit or (once the commit let the chunk leave the cache) a miss.
    expect(value("stratus_volume_cache_hits_total", vol)! + value("stratus_volume_cache_misses_total", vol)!).toBe(3);
    expect(value("stratus_volume_connections", vol)).toBe(1);
    expect(value("stratus_volume_lease_held", { ...vol, gateway: "gw-test" })).toBe(1);
    expect(value("stratus_store_requests_total", { operation: "put" })).toBe(store.counters.put.requests);
    expect(store.counters.put.requests).toBeGreaterThanOrEqual(4);
    expect(value("stratus_store_bytes_total", { operation: "put" })).toBe(store.counters.put.bytes);
    expect(value("stratus_store_errors_total", { operation: "get", class: "transient" })).toBe(0);
    expect(value("stratus_store_retries_total", { operation: "put" })).toBe(1);
    expect(value("stratus_codec_pool_busy_workers")).toBe(1);
    // prom-client's default process metrics: event-loop lag and memory.
    expect(after.get("nodejs_eventloop_lag_seconds")?.type).toBe("gauge");
    expect(value("process_resident_memory_bytes")).toBeGreaterThan(0);

    // Every metric the shipped Grafana dashboard queries exists.
    const dashboard = await readFile(new URL("../../../../docs/grafana/stratus-dashboard.json", import.meta.url), "utf8");
    const queried = new Set([...dashboard.matchAll(/\b(?:stratus|nodejs|process)_[a-z0-9_]+/g)].map(([name]) => name.replace(/_bucket$/, "")));
    expect(queried.size).toBeGreaterThan(15);
    for (const name of queried) expect(after.has(name), name).toBe(true);
  });

  it("refuses a scrape without the bearer token, or with a wrong one", async () => {
    const metrics = new GatewayMetrics({
      gatewayId: "gw",
      meters: new VolumeMeters(),
      openEngines: async () => [],
      openVolumeIds: () => [],
      processMetrics: false,
    });
    const url = await serve(metrics, TOKEN);
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: "Bearer wrong-token-wrong-token" } })).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Basic ${TOKEN}` } })).status).toBe(401);
    expect((await fetch(url.replace("/metrics", "/other"), { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
    const families = await scrapeMetrics(url, TOKEN);
    expect(families.has("stratus_volume_written_bytes_total")).toBe(true);
  });

  it("makes at most one label value per volume: 1,000 volumes, at most 1,000 per metric", async () => {
    const meters = new VolumeMeters();
    const engines: MeteredEngine[] = [];
    for (let i = 0; i < 1000; i++) {
      const volumeId = `vol_${i.toString(16).padStart(8, "0")}`;
      const meter = meters.meterFor(volumeId);
      meter.readBytes = i;
      meter.observe(0, 0.001);
      meter.observe(4, 0.2);
      const stats = {
        logicalBytes: 1,
        storedBytes: 0,
        compressionRatio: 1,
        dirtyBytes: i,
        chunksStored: 0,
        epoch: 1,
        cachedBytes: 0,
        queueDepth: 0,
        lastCommitAt: 0,
      };
      const counters = { cacheHits: 1, cacheMisses: 1, commits: 1, commitSeconds: 1, lastCommitSeconds: 1 };
      engines.push({ volumeId, connections: 1, volume: { stats: () => stats, counters } });
    }
    const metrics = new GatewayMetrics({
      gatewayId: "gw",
      meters,
      openEngines: async () => engines,
      openVolumeIds: () => engines.map((e) => e.volumeId),
      processMetrics: false,
    });
    const families = parsePrometheusText(await metrics.render());
    let volumeMetrics = 0;
    for (const family of families.values()) {
      const labelValues = new Map<string, Set<string>>();
      for (const sample of family.samples)
        for (const [label, value] of Object.entries(sample.labels)) {
          if (label === "le" || label === "command") continue; // a fixed set of values, whatever the volumes
          let values = labelValues.get(label);
          if (values === undefined) labelValues.set(label, (values = new Set()));
          values.add(value);
        }
      for (const [label, values] of labelValues) expect(values.size, `${family.name} label ${label}`).toBeLessThanOrEqual(1000);
      if (labelValues.has("volume")) {
        volumeMetrics++;
        expect(labelValues.get("volume")!.size).toBe(1000);
        // Only ids: no names, no paths.
        for (const value of labelValues.get("volume")!) expect(value).toMatch(/^vol_[0-9a-f]{8}$/);
      }
    }
    expect(volumeMetrics).toBeGreaterThanOrEqual(15);
  });

  it("forgets a closed volume's counters after the retention, and keeps them across a reopen before it", async () => {
    let now = 0;
    const meters = new VolumeMeters({ retentionMs: 60_000, now: () => now });
    const meter = meters.meterFor("vol_a");
    meter.writtenBytes = 10;
    expect(meters.collect(["vol_a"]).get("vol_a")).toBe(meter);
    now = 59_000;
    expect(meters.collect([]).has("vol_a")).toBe(true);
    expect(meters.meterFor("vol_a").writtenBytes).toBe(10);
    now = 121_000;
    expect(meters.collect([]).has("vol_a")).toBe(false);
    expect(meters.size).toBe(0);
  });
});
