/**
 * One volume's request counters, held by its engine and bumped by every NBD request (counting-device.ts):
 * bytes and operations read and written, and a latency histogram per NBD command kept as plain arrays
 * of bucket counts. A request costs a few additions and a short scan of the bucket bounds: no
 * allocation, no lookup by string. A scrape turns them into Prometheus samples (gateway-metrics.ts).
 */

/** The commands timed, in the order of their slots; the names are the `command` label's values. */
export const METERED_COMMANDS = ["read", "write", "trim", "write_zeroes", "flush", "cache", "block_status"] as const;
export type MeteredCommand = (typeof METERED_COMMANDS)[number];

export const CMD_READ = 0;
export const CMD_WRITE = 1;
export const CMD_TRIM = 2;
export const CMD_WRITE_ZEROES = 3;
export const CMD_FLUSH = 4;
export const CMD_CACHE = 5;
export const CMD_BLOCK_STATUS = 6;

/** Upper bounds (seconds) of the latency buckets: a cached read takes microseconds, a cloud FLUSH seconds. */
export const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;
const SLOTS = LATENCY_BUCKETS.length + 1; // the last one: above every bound (+Inf)

export class VolumeMeter {
  /**
   * `timed`: latencies are measured (metrics are on). Off, the engine still counts bytes and operations
   * (the dashboard's chart) but reads no clock per request.
   */
  constructor(readonly timed = false) {}

  readBytes = 0;
  writtenBytes = 0;
  readOps = 0;
  writeOps = 0;
  /** Per command, per bucket: requests whose latency fell in it (not cumulative). */
  readonly bucketCounts = new Float64Array(METERED_COMMANDS.length * SLOTS);
  /** Per command: seconds in all, and requests. */
  readonly latencySums = new Float64Array(METERED_COMMANDS.length);
  readonly latencyCounts = new Float64Array(METERED_COMMANDS.length);

  /** Records one request of `command` (a CMD_* slot) that took `seconds`. */
  observe(command: number, seconds: number): void {
    if (!this.timed) return;
    let slot = 0;
    while (slot < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[slot]!) slot++;
    this.bucketCounts[command * SLOTS + slot]! += 1;
    this.latencySums[command]! += seconds;
    this.latencyCounts[command]! += 1;
  }

  /** Cumulative counts of `command`'s buckets, one per bound and +Inf last (the Prometheus shape). */
  cumulativeBuckets(command: number): number[] {
    const out: number[] = [];
    let total = 0;
    for (let slot = 0; slot < SLOTS; slot++) {
      total += this.bucketCounts[command * SLOTS + slot]!;
      out.push(total);
    }
    return out;
  }
}
