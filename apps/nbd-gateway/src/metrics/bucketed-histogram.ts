/**
 * A Prometheus histogram whose buckets are counted elsewhere (each volume's VolumeMeter) and only
 * read at a scrape. prom-client's Histogram counts through `observe(labels, value)`, which hashes the
 * labels on every call; this object gives the registry the same `get()` shape from counts kept in
 * plain arrays, so the registry formats it like any of its own metrics.
 */
import type { Metric } from "prom-client";

export interface HistogramSeries {
  labels: Record<string, string>;
  /** Cumulative counts, one per bound and the +Inf one last. */
  buckets: readonly number[];
  sum: number;
  count: number;
}

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

export function bucketedHistogram(options: { name: string; help: string; bounds: readonly number[]; series: () => Iterable<HistogramSeries> }): Metric {
  const { name, help, bounds, series } = options;
  const get = () => {
    const values: Sample[] = [];
    for (const one of series()) {
      for (let i = 0; i < one.buckets.length; i++) {
        const le = i < bounds.length ? String(bounds[i]) : "+Inf";
        values.push({ metricName: `${name}_bucket`, labels: { ...one.labels, le }, value: one.buckets[i]! });
      }
      values.push({ metricName: `${name}_sum`, labels: one.labels, value: one.sum });
      values.push({ metricName: `${name}_count`, labels: one.labels, value: one.count });
    }
    return { name, help, type: "histogram", aggregator: "sum", values };
  };
  // The registry reads name, help, type and get(); reset() is called by registry.resetMetrics().
  const metric = { name, help, type: "histogram", aggregator: "sum", get: async () => get(), reset: () => {}, collect: () => {} };
  return metric as unknown as Metric;
}
