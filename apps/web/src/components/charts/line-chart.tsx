/**
 * A small dependency-free SVG line chart for time series (stored bytes, throughput). It scales to its
 * container's width (viewBox + preserveAspectRatio="none" for the plot, text kept outside the scaled
 * part), draws up to a few series with a legend, and describes itself for screen readers with a
 * summary instead of a picture-only element.
 */
import { formatClock } from "@/lib/format";

export interface Series {
  name: string;
  /** Tailwind-independent colour, so the SVG needs no class scanning. */
  color: string;
  points: readonly { at: number; value: number }[];
}

const WIDTH = 600;

/** The next "round" number at or above `value`: 1, 2 or 5 times a power of ten (or of 1024 above 1 KiB). */
export function niceCeil(value: number): number {
  if (!(value > 0)) return 1;
  const base = value >= 1024 ? 1024 ** Math.floor(Math.log(value) / Math.log(1024)) : 1;
  const scaled = value / base;
  const power = 10 ** Math.floor(Math.log10(scaled));
  const step = [1, 2, 5, 10].find((m) => m * power >= scaled) ?? 10;
  return step * power * base;
}
const HEIGHT = 160;

export function LineChart({
  title,
  series,
  formatValue,
  emptyText = "No samples yet.",
  minScale = 1,
}: {
  title: string;
  series: readonly Series[];
  formatValue: (value: number) => string;
  emptyText?: string;
  /** The value axis reaches at least this far, so an idle series is a flat line at the bottom. */
  minScale?: number;
}) {
  const all = series.flatMap((s) => s.points);
  const summary = series
    .map((s) => {
      const last = s.points.at(-1);
      if (!last) return `${s.name}: no data`;
      const peak = Math.max(...s.points.map((p) => p.value));
      return `${s.name}: ${formatValue(last.value)} now, peak ${formatValue(peak)}`;
    })
    .join("; ");

  if (!series.some((s) => s.points.length >= 2)) {
    return (
      <figure className="rounded-md border border-dashed border-slate-200 p-4">
        <figcaption className="text-sm font-medium text-slate-700">{title}</figcaption>
        <p className="mt-6 mb-6 text-center text-sm text-slate-500">{emptyText}</p>
      </figure>
    );
  }

  const minAt = Math.min(...all.map((p) => p.at));
  const maxAt = Math.max(...all.map((p) => p.at));
  const maxValue = niceCeil(Math.max(minScale, ...all.map((p) => p.value)));
  const x = (at: number) => (maxAt === minAt ? 0 : ((at - minAt) / (maxAt - minAt)) * WIDTH);
  const y = (value: number) => HEIGHT - (value / maxValue) * HEIGHT;
  const gridValues = [0.25, 0.5, 0.75, 1].map((f) => f * maxValue);

  return (
    <figure className="rounded-md border border-slate-200 p-3">
      <figcaption className="flex flex-wrap items-center justify-between gap-2 text-sm">
        <span className="font-medium text-slate-700">{title}</span>
        <span className="flex flex-wrap gap-3 text-xs text-slate-600">
          {series.map((s) => (
            <span key={s.name} className="inline-flex items-center gap-1">
              <span aria-hidden="true" className="inline-block h-2 w-3 rounded-sm" style={{ backgroundColor: s.color }} />
              {s.name}
            </span>
          ))}
        </span>
      </figcaption>
      <div className="mt-2 flex gap-2">
        <div className="flex w-16 flex-none flex-col justify-between text-right text-[10px] leading-none text-slate-500" aria-hidden="true">
          <span>{formatValue(maxValue)}</span>
          <span>{formatValue(maxValue / 2)}</span>
          <span>0</span>
        </div>
        <div className="min-w-0 flex-1">
          <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} preserveAspectRatio="none" className="h-40 w-full" role="img" aria-label={`${title}. ${summary}`}>
            {gridValues.map((value) => (
              <line key={value} x1={0} x2={WIDTH} y1={y(value)} y2={y(value)} stroke="#e2e8f0" strokeWidth={1} vectorEffect="non-scaling-stroke" />
            ))}
            <line x1={0} x2={WIDTH} y1={HEIGHT} y2={HEIGHT} stroke="#cbd5e1" strokeWidth={1} vectorEffect="non-scaling-stroke" />
            {series.map((s) => {
              if (s.points.length === 0) return null;
              const path = s.points.map((p, i) => `${i === 0 ? "M" : "L"}${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
              const area = `${path} L${x(s.points.at(-1)!.at).toFixed(1)},${HEIGHT} L${x(s.points[0]!.at).toFixed(1)},${HEIGHT} Z`;
              return (
                <g key={s.name}>
                  <path d={area} fill={s.color} fillOpacity={0.08} />
                  <path d={path} fill="none" stroke={s.color} strokeWidth={2} vectorEffect="non-scaling-stroke" strokeLinejoin="round" />
                </g>
              );
            })}
          </svg>
          <div className="mt-1 flex justify-between text-[10px] text-slate-500" aria-hidden="true">
            <span>{formatClock(minAt)}</span>
            <span>{formatClock(maxAt)}</span>
          </div>
        </div>
      </div>
    </figure>
  );
}
