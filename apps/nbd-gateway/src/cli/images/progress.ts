/**
 * The progress of an image copy on standard error: a cli-progress bar with rate and time left on a
 * terminal, and one plain line per 5% otherwise (logs, CI, a test reading the CLI's output).
 */
import { Presets, SingleBar } from "cli-progress";
import { formatSize } from "@stratus/control";

export interface CopyProgress {
  update(percent: number): void;
  stop(): void;
}

export function copyProgress(label: string, totalBytes: number, stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): CopyProgress {
  const started = now();
  const fields = (percent: number) => {
    const done = (totalBytes * percent) / 100;
    const seconds = Math.max(0.001, (now() - started) / 1000);
    const rate = done / seconds;
    const left = rate > 0 ? (totalBytes - done) / rate : undefined;
    return {
      done: formatSize(Math.round(done)),
      total: formatSize(totalBytes),
      rate: `${formatSize(Math.round(rate))}/s`,
      left: left === undefined ? "?" : formatSeconds(left),
    };
  };
  if (stream.isTTY) {
    const bar = new SingleBar(
      { format: `${label} {bar} {percentage}% | {done}/{total} | {rate} | {left} left`, stream, hideCursor: true, clearOnComplete: false },
      Presets.shades_classic,
    );
    bar.start(100, 0, fields(0));
    return { update: (percent) => bar.update(percent, fields(percent)), stop: () => bar.stop() };
  }
  let shown = -1;
  return {
    update(percent) {
      const step = Math.floor(percent / 5) * 5;
      if (step <= shown) return;
      shown = step;
      const f = fields(percent);
      stream.write(`${label} ${percent}% (${f.done} of ${f.total}, ${f.rate}, ${f.left} left)\n`);
    },
    stop() {},
  };
}

export function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
