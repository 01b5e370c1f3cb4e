"use client";
/**
 * Stored bytes and throughput over the last hour, from the samples the holding gateway writes every
 * 10 s (the server turns the cumulative read/write counters into rates per interval).
 */
import { useQuery } from "@tanstack/react-query";
import { LineChart, type Series } from "@/components/charts/line-chart";
import { formatBytes, formatRate, toDate } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";

const WINDOW_MINUTES = 60;

export function VolumeCharts({ name }: { name: string }) {
  const trpc = useTRPC();
  const metrics = useQuery(trpc.volume.metrics.queryOptions({ name, minutes: WINDOW_MINUTES }, { refetchInterval: 5_000 }));
  const points = (metrics.data?.points ?? []).flatMap((p) => {
    const at = toDate(p.at)?.getTime();
    return at === undefined ? [] : [{ ...p, at }];
  });
  const stored: Series[] = [{ name: "Stored", color: "#4f46e5", points: points.map((p) => ({ at: p.at, value: p.storedBytes })) }];
  const throughput: Series[] = [
    { name: "Written", color: "#0891b2", points: points.map((p) => ({ at: p.at, value: p.writeBps })) },
    { name: "Read", color: "#f59e0b", points: points.map((p) => ({ at: p.at, value: p.readBps })) },
  ];
  const emptyText = metrics.isPending ? "Loading…" : "No samples yet: they appear while the volume is attached.";
  return (
    <div className="grid gap-4 lg:grid-cols-2">
      <LineChart title="Stored bytes" series={stored} formatValue={formatBytes} emptyText={emptyText} minScale={2 ** 20} />
      <LineChart title="Throughput" series={throughput} formatValue={formatRate} emptyText={emptyText} minScale={1024} />
    </div>
  );
}
