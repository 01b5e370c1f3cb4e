/**
 * The VolumeMeter of each volume this gateway served lately, by volume id. An engine takes its volume's
 * meter when it opens (one lookup per open, none per request), so counters keep counting across a
 * detach and a re-attach instead of starting again at zero. A meter whose volume has not been open
 * for `retentionMs` is dropped at a scrape: the number of label values stays bounded by the volumes
 * open here lately, whatever the number of volumes in the deployment.
 */
import { VolumeMeter } from "./volume-meter";

/** How long a closed volume's counters stay exported (long enough for a few scrapes to see the last of them). */
export const METER_RETENTION_MS = 15 * 60_000;

interface Entry {
  meter: VolumeMeter;
  /** When the volume was last seen open (ms, the injected clock). */
  seenAt: number;
}

export class VolumeMeters {
  readonly #entries = new Map<string, Entry>();

  constructor(private readonly options: { retentionMs?: number; now?: () => number } = {}) {}

  /** The meter of `volumeId`, made on first use. */
  meterFor(volumeId: string): VolumeMeter {
    const entry = this.#entries.get(volumeId);
    if (entry !== undefined) {
      entry.seenAt = this.#now();
      return entry.meter;
    }
    const meter = new VolumeMeter(true);
    this.#entries.set(volumeId, { meter, seenAt: this.#now() });
    return meter;
  }

  /**
   * The meters to export: every volume open now (`openIds`) and those closed less than the retention
   * ago; older ones are forgotten.
   */
  collect(openIds: Iterable<string>): Map<string, VolumeMeter> {
    const now = this.#now();
    for (const id of openIds) {
      const entry = this.#entries.get(id);
      if (entry !== undefined) entry.seenAt = now;
    }
    const retention = this.options.retentionMs ?? METER_RETENTION_MS;
    const out = new Map<string, VolumeMeter>();
    for (const [id, entry] of this.#entries) {
      if (now - entry.seenAt > retention) this.#entries.delete(id);
      else out.set(id, entry.meter);
    }
    return out;
  }

  get size(): number {
    return this.#entries.size;
  }

  #now(): number {
    return (this.options.now ?? Date.now)();
  }
}
