/**
 * An ExportRegistry over named in-memory devices for tests. Counts opens and releases so tests
 * can check every connection releases its export exactly once.
 */
import type { BlockDevice } from "@stratus/storage";
import type { ExportRegistry, ExportSummary, OpenedExport } from "../server/export-registry";

export class MemoryExportRegistry implements ExportRegistry {
  private readonly exports = new Map<string, { description: string; device: BlockDevice }>();
  opens = 0;
  releases = 0;
  /** Releases per export name; a second release of one opening throws. */
  readonly openByName = new Map<string, number>();
  /** What each open connection registered for a handoff, by export name. */
  private readonly handoffs = new Map<string, Set<() => void>>();

  add(name: string, device: BlockDevice, description = ""): this {
    this.exports.set(name, { description, device });
    return this;
  }

  /** Tells every connection that has `name` open to hand it over (as a gateway does for another device). */
  handOff(name: string): number {
    const listeners = [...(this.handoffs.get(name) ?? [])];
    this.handoffs.delete(name);
    for (const listener of listeners) listener();
    return listeners.length;
  }

  get openCount(): number {
    return this.opens - this.releases;
  }

  async list(): Promise<ExportSummary[]> {
    return [...this.exports].map(([name, e]) => ({ name, description: e.description }));
  }

  async open(name: string): Promise<OpenedExport | undefined> {
    const entry = this.exports.get(name);
    if (!entry) return undefined;
    this.opens++;
    this.openByName.set(name, (this.openByName.get(name) ?? 0) + 1);
    let released = false;
    let handoff: (() => void) | undefined;
    return {
      name,
      description: entry.description,
      device: entry.device,
      release: async () => {
        if (released) throw new Error(`export ${name} released twice`);
        released = true;
        if (handoff) this.handoffs.get(name)?.delete(handoff);
        this.releases++;
        this.openByName.set(name, (this.openByName.get(name) ?? 0) - 1);
      },
      onHandoff: (listener) => {
        handoff = listener;
        if (!this.handoffs.has(name)) this.handoffs.set(name, new Set());
        this.handoffs.get(name)!.add(listener);
      },
    };
  }
}
