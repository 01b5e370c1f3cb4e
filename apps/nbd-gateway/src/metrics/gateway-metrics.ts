/**
 * The gateway's Prometheus registry: per volume (label `volume`, the volume id only: never a name or a
 * path), per store operation, and the process (prom-client's default metrics: memory, event-loop lag,
 * GC; and the codec pool). Nothing here runs per request: each scrape takes one snapshot of the open
 * engines, and the metrics' collect() callbacks read it. docs/metrics.md lists every metric.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import { STORE_ERROR_CLASSES, STORE_OPERATIONS, type StoreCounters, type VolumeCounters, type VolumeStats } from "@stratus/storage";
import type { StoreRetries } from "./store-retries";
import { bucketedHistogram, type HistogramSeries } from "./bucketed-histogram";
import { LATENCY_BUCKETS, METERED_COMMANDS, type VolumeMeter } from "./volume-meter";
import type { VolumeMeters } from "./volume-meters";

export { newStoreRetries, retriedOperation, type StoreRetries } from "./store-retries";

/** What a scrape reads of an open engine. */
export interface MeteredEngine {
  volumeId: string;
  volume: { stats(): VolumeStats; readonly counters: VolumeCounters };
  connections: number;
}

export interface GatewayMetricsSources {
  /** This gateway's id: the `gateway` label of the lease gauge (one value per process). */
  gatewayId: string;
  meters: VolumeMeters;
  /** Engines open here with a connection (VolumeEngines.openEngines). */
  openEngines(): Promise<MeteredEngine[]>;
  /** Every volume open here, closing ones included (VolumeEngines.openVolumeIds). */
  openVolumeIds(): string[];
  store?: { counters: StoreCounters; retries: StoreRetries };
  codecPool?: { readonly size: number; load(): { busyWorkers: number; requests: number } };
  /** Collect prom-client's default process metrics (default true; tests of many registries turn it off). */
  processMetrics?: boolean;
  now?: () => number;
}

interface Snapshot {
  engines: MeteredEngine[];
  meters: Map<string, VolumeMeter>;
  at: number;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  #snapshot: Snapshot = { engines: [], meters: new Map(), at: 0 };

  constructor(private readonly sources: GatewayMetricsSources) {
    if (sources.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.#volumeMetrics();
    this.#storeMetrics();
    this.#codecMetrics();
  }

  /** The Prometheus text exposition of everything, from a snapshot taken now. */
  async render(): Promise<string> {
    const engines = await this.sources.openEngines();
    const meters = this.sources.meters.collect(this.sources.openVolumeIds());
    this.#snapshot = { engines, meters, at: (this.sources.now ?? Date.now)() };
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #volumeMetrics(): void {
    const registers = [this.registry];
    const snapshot = () => this.#snapshot;
    const fromMeters = (name: string, help: string, type: "counter" | "gauge", read: (meter: VolumeMeter) => number) => {
      const collect = function (this: Counter<"volume"> | Gauge<"volume">) {
        this.reset();
        for (const [volume, meter] of snapshot().meters) setValue(this, { volume }, read(meter));
      };
      if (type === "counter") new Counter({ name, help, labelNames: ["volume"], registers, collect });
      else new Gauge({ name, help, labelNames: ["volume"], registers, collect });
    };
    fromMeters("stratus_volume_read_bytes_total", "Bytes NBD clients read from the volume.", "counter", (m) => m.readBytes);
    fromMeters("stratus_volume_written_bytes_total", "Bytes NBD clients wrote to the volume.", "counter", (m) => m.writtenBytes);
    fromMeters("stratus_volume_read_operations_total", "NBD READ requests served.", "counter", (m) => m.readOps);
    fromMeters("stratus_volume_write_operations_total", "NBD WRITE requests served.", "counter", (m) => m.writeOps);
    this.registry.registerMetric(
      bucketedHistogram({
        name: "stratus_volume_request_duration_seconds",
        help: "Time the volume took to serve an NBD request, by command (not counting the wire).",
        bounds: LATENCY_BUCKETS,
        series: () => latencySeries(snapshot().meters),
      }),
    );

    const fromEngines = (
      name: string,
      help: string,
      type: "counter" | "gauge",
      read: (engine: MeteredEngine, stats: VolumeStats, at: number) => number | undefined,
    ) => {
      const collect = function (this: Counter<"volume"> | Gauge<"volume">) {
        this.reset();
        const { engines, at } = snapshot();
        for (const engine of engines) {
          const value = read(engine, engine.volume.stats(), at);
          if (value !== undefined) setValue(this, { volume: engine.volumeId }, value);
        }
      };
      if (type === "counter") new Counter({ name, help, labelNames: ["volume"], registers, collect });
      else new Gauge({ name, help, labelNames: ["volume"], registers, collect });
    };
    fromEngines("stratus_volume_dirty_bytes", "Bytes written since the last commit (not in the bucket yet).", "gauge", (_e, s) => s.dirtyBytes);
    fromEngines("stratus_volume_cached_bytes", "Bytes of the volume's chunks in the local disk cache.", "gauge", (_e, s) => s.cachedBytes);
    fromEngines("stratus_volume_upload_queue_depth", "Chunk uploads queued or running for the volume.", "gauge", (_e, s) => s.queueDepth);
    fromEngines("stratus_volume_stored_bytes", "Stored (compressed, sealed) bytes of the committed chunks.", "gauge", (_e, s) => s.storedBytes);
    fromEngines("stratus_volume_connections", "NBD connections attached to the volume here.", "gauge", (e) => e.connections);
    fromEngines(
      "stratus_volume_cache_hits_total",
      "Read pieces served from the local cache (or holes) since the volume opened.",
      "counter",
      (e) => e.volume.counters.cacheHits,
    );
    fromEngines(
      "stratus_volume_cache_misses_total",
      "Read pieces fetched from the bucket (or warmed) since the volume opened.",
      "counter",
      (e) => e.volume.counters.cacheMisses,
    );
    fromEngines("stratus_volume_commits_total", "Commits since the volume opened.", "counter", (e) => e.volume.counters.commits);
    fromEngines(
      "stratus_volume_commit_duration_seconds_total",
      "Seconds those commits took (uploads and index).",
      "counter",
      (e) => e.volume.counters.commitSeconds,
    );
    fromEngines("stratus_volume_last_commit_duration_seconds", "How long the last commit took.", "gauge", (e) =>
      e.volume.counters.commits > 0 ? e.volume.counters.lastCommitSeconds : undefined,
    );
    fromEngines("stratus_volume_last_commit_age_seconds", "Seconds since the last commit landed (absent before the first since open).", "gauge", (_e, s, at) =>
      s.lastCommitAt === undefined ? undefined : Math.max(0, (at - s.lastCommitAt) / 1000),
    );
    const gatewayId = this.sources.gatewayId;
    new Gauge({
      name: "stratus_volume_lease_held",
      help: "1 for each volume whose lease this gateway holds (label gateway: this gateway's id).",
      labelNames: ["volume", "gateway"],
      registers,
      collect() {
        this.reset();
        for (const engine of snapshot().engines) this.set({ volume: engine.volumeId, gateway: gatewayId }, 1);
      },
    });
  }

  #storeMetrics(): void {
    const store = this.sources.store;
    if (store === undefined) return;
    const registers = [this.registry];
    new Counter({
      name: "stratus_store_requests_total",
      help: "Requests sent to the object store (every attempt), by operation.",
      labelNames: ["operation"],
      registers,
      collect() {
        this.reset();
        for (const operation of STORE_OPERATIONS) this.inc({ operation }, store.counters[operation].requests);
      },
    });
    new Counter({
      name: "stratus_store_bytes_total",
      help: "Body bytes sent (put) and received (get) by the object store.",
      labelNames: ["operation"],
      registers,
      collect() {
        this.reset();
        this.inc({ operation: "put" }, store.counters.put.bytes);
        this.inc({ operation: "get" }, store.counters.get.bytes);
      },
    });
    new Counter({
      name: "stratus_store_deleted_keys_total",
      help: "Keys the object store was asked to delete.",
      registers,
      collect() {
        this.reset();
        this.inc(store.counters.delete.bytes);
      },
    });
    new Counter({
      name: "stratus_store_errors_total",
      help: "Failed object store requests, by operation and class (transient: a retry may heal it).",
      labelNames: ["operation", "class"],
      registers,
      collect() {
        this.reset();
        for (const operation of STORE_OPERATIONS)
          for (const errorClass of STORE_ERROR_CLASSES) this.inc({ operation, class: errorClass }, store.counters[operation].errors[errorClass]);
      },
    });
    new Counter({
      name: "stratus_store_retries_total",
      help: "Retries of object store operations after a transient failure, by operation.",
      labelNames: ["operation"],
      registers,
      collect() {
        this.reset();
        for (const operation of STORE_OPERATIONS) this.inc({ operation }, store.retries[operation]);
      },
    });
  }

  #codecMetrics(): void {
    const pool = this.sources.codecPool;
    if (pool === undefined) return;
    const registers = [this.registry];
    new Gauge({ name: "stratus_codec_pool_workers", help: "Worker threads that seal and open chunks.", registers, collect: () => undefined }).set(pool.size);
    new Gauge({
      name: "stratus_codec_pool_busy_workers",
      help: "Codec workers with a request in flight.",
      registers,
      collect() {
        this.set(pool.load().busyWorkers);
      },
    });
    new Gauge({
      name: "stratus_codec_pool_requests",
      help: "Seal and open requests in flight in the codec pool.",
      registers,
      collect() {
        this.set(pool.load().requests);
      },
    });
  }
}

function setValue(metric: Counter<"volume"> | Gauge<"volume">, labels: { volume: string }, value: number): void {
  if (metric instanceof Counter) metric.inc(labels, value);
  else metric.set(labels, value);
}

function* latencySeries(meters: Map<string, VolumeMeter>): Iterable<HistogramSeries> {
  for (const [volume, meter] of meters) {
    for (let command = 0; command < METERED_COMMANDS.length; command++) {
      // A command the volume never served adds no series.
      if (meter.latencyCounts[command] === 0) continue;
      yield {
        labels: { volume, command: METERED_COMMANDS[command]! },
        buckets: meter.cumulativeBuckets(command),
        sum: meter.latencySums[command]!,
        count: meter.latencyCounts[command]!,
      };
    }
  }
}
