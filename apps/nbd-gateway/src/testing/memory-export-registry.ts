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

  add(name: string, device: BlockDevice, description = ""): this {
    this.exports.set(name, { description, device });
    return this;
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
    return {
      name,
      description: entry.description,
      device: entry.device,
      release: async () => {
        if (released) throw new Error(`export ${name} released twice`);
        released = true;
        this.releases++;
        this.openByName.set(name, (this.openByName.get(name) ?? 0) - 1);
      },
    };
  }
}
