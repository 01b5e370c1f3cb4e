"use client";
/**
 * Stored bytes and throughput over the last hour, from the samples the holding gateway writes every
 * 10 s. Read/written counters are cumulative since the engine opened: throughput is the difference
 * between neighbouring samples over their time gap (a drop means the engine reopened: count from 0).
 */
import { useQuery } from "@tanstack/react-query";
import { LineChart, type Series } from "@/components/charts/line-chart";
import { formatBytes, formatRate, toDate } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";

const WINDOW_MINUTES = 60;

export interface Sample {
  at: Date | string | number;
  storedBytes: number;
  readBytes: number;
  writtenBytes: number;
}

/** Per-second rates between neighbouring samples of a cumulative counter. */
export function rates(samples: readonly Sample[], pick: (s: Sample) => number): { at: number; value: number }[] {
  const out: { at: number; value: number }[] = [];
  for (let i = 1; i < samples.length; i++) {
    const prev = samples[i - 1]!;
    const cur = samples[i]!;
    const t0 = toDate(prev.at)?.getTime();
    const t1 = toDate(cur.at)?.getTime();
    if (t0 === undefined || t1 === undefined || t1 <= t0) continue;
    const delta = pick(cur) >= pick(prev) ? pick(cur) - pick(prev) : pick(cur);
    out.push({ at: t1, value: delta / ((t1 - t0) / 1000) });
  }
  return out;
}

export function VolumeCharts({ name }: { name: string }) {
  const trpc = useTRPC();
  const metrics = useQuery(trpc.volume.metrics.queryOptions({ name, minutes: WINDOW_MINUTES }, { refetchInterval: 10_000 }));
  const samples: Sample[] = metrics.data?.samples ?? [];
  const stored: Series[] = [
    {
      name: "Stored",
      color: "#4f46e5",
      points: samples.flatMap((s) => {
        const at = toDate(s.at)?.getTime();
        return at === undefined ? [] : [{ at, value: s.storedBytes }];
      }),
    },
  ];
  const throughput: Series[] = [
    { name: "Written", color: "#0891b2", points: rates(samples, (s) => s.writtenBytes) },
    { name: "Read", color: "#f59e0b", points: rates(samples, (s) => s.readBytes) },
  ];
  const emptyText = metrics.isPending ? "Loading…" : "No samples yet: they appear while the volume is attached.";
  return (
    <div className="grid gap-4 lg:grid-cols-2">
      <LineChart title="Stored bytes" series={stored} formatValue={formatBytes} emptyText={emptyText} />
      <LineChart title="Throughput" series={throughput} formatValue={formatRate} emptyText={emptyText} />
    </div>
  );
}
