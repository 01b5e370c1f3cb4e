/**
 * One engine (a storage `Volume`) per open volume in this gateway, shared by every NBD connection
 * to it and reference-counted: several connections see each other's writes at once, which is what
 * lets the server advertise CAN_MULTI_CONN truthfully. The last connection to leave flushes and
 * closes the engine. This is also the gateway's ExportRegistry: export names are volume names,
 * resolved against the database on every open, so a volume created a moment ago is attachable.
 */
import type { Database, VolumeRow } from "@stratus/db";
import { findVolumeByName, listVolumes } from "@stratus/db";
import { Volume, type ObjectStore } from "@stratus/storage";
import type { Logger } from "pino";
import { DbChunkIndex } from "../adapters/db-chunk-index";
import { formatSize } from "../config/units";
import type { ExportRegistry, ExportSummary, OpenedExport } from "../server/export-registry";

interface Engine {
  volume: Volume;
  connections: number;
}

export interface VolumeEnginesOptions {
  database: Database;
  store: ObjectStore;
  logger: Logger;
  memoryCacheBytes: number;
  dirtyLimitBytes: number;
}

export class VolumeEngines implements ExportRegistry {
  /** Keyed by volume id; the promise lets concurrent opens of one volume share one engine. */
  readonly #engines = new Map<string, Promise<Engine>>();
  /**
   * Engines still flushing after their last connection left; a reopen waits for them. Resolves
   * to the engine itself when its final flush failed: its dirty data lives only in that engine's
   * memory, so the next connection must get it back rather than a fresh engine that lacks it.
   */
  readonly #closing = new Map<string, Promise<Engine | undefined>>();
  #closed = false;

  constructor(private readonly options: VolumeEnginesOptions) {}

  async list(): Promise<ExportSummary[]> {
    const rows = await listVolumes(this.options.database.db);
    return rows.filter((row) => row.state === "active").map((row) => ({ name: row.name, description: describe(row) }));
  }

  async open(name: string): Promise<OpenedExport | undefined> {
    if (this.#closed) return undefined;
    const row = await findVolumeByName(this.options.database.db, name);
    if (!row || row.state !== "active") return undefined;
    const engine = await this.#acquire(row);
    let released = false;
    return {
      name: row.name,
      description: describe(row),
      device: engine.volume,
      release: async () => {
        if (released) return;
        released = true;
        await this.#release(row.id, engine);
      },
    };
  }

  /** The engine of a volume if some connection has it open (for stats and delete checks). */
  async get(volumeId: string): Promise<{ volume: Volume; connections: number } | undefined> {
    const pending = this.#engines.get(volumeId);
    return pending ? await pending.catch(() => undefined) : undefined;
  }

  /** Flushes and closes every engine; used at shutdown after the NBD server stopped. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    const engines = [...this.#engines.values()];
    this.#engines.clear();
    for (const unclosed of await Promise.all(this.#closing.values())) {
      if (unclosed) engines.push(Promise.resolve(unclosed));
    }
    const results = await Promise.allSettled(engines.map(async (pending) => (await pending).volume.close()));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    for (const failure of failed) this.options.logger.error({ err: failure.reason }, "closing a volume failed");
    if (failed.length > 0) throw new Error(`${failed.length} volume(s) could not be flushed at shutdown`);
  }

  #acquire(row: VolumeRow): Promise<Engine> {
    let pending = this.#engines.get(row.id);
    if (!pending) {
      pending = this.#openEngine(row);
      this.#engines.set(row.id, pending);
      // A failed open must not poison later attempts.
      pending.catch(() => this.#engines.delete(row.id));
    }
    return pending.then((engine) => {
      engine.connections += 1;
      return engine;
    });
  }

  async #openEngine(row: VolumeRow): Promise<Engine> {
    const { database, store, logger, memoryCacheBytes, dirtyLimitBytes } = this.options;
    // The previous engine's final commit must land before this one loads the chunk map.
    const unclosed = await this.#closing.get(row.id);
    if (unclosed) return unclosed;
    const volume = await Volume.open({
      volumeId: row.id,
      size: row.sizeBytes,
      chunkSize: row.chunkSize,
      store,
      index: new DbChunkIndex(database.db, row.id),
      cacheBytes: memoryCacheBytes,
      dirtyLimitBytes,
      logger: logger.child({ volumeId: row.id }),
    });
    logger.info({ volumeId: row.id, volume: row.name }, "volume opened");
    return { volume, connections: 0 };
  }

  async #release(volumeId: string, engine: Engine): Promise<void> {
    engine.connections -= 1;
    if (engine.connections > 0 || this.#engines.get(volumeId) === undefined) return;
    // Last connection gone: flush and close. Remove first so a new connection opens afresh
    // (after this close completes, via the index in the database).
    this.#engines.delete(volumeId);
    const closing = engine.volume.close().then(
      () => {
        this.options.logger.info({ volumeId }, "volume closed");
        return undefined;
      },
      (error: unknown) => {
        this.options.logger.error({ err: error, volumeId }, "flushing a volume on last disconnect failed; keeping it open");
        return engine;
      },
    );
    this.#closing.set(volumeId, closing);
    await closing;
    if (this.#closing.get(volumeId) === closing) this.#closing.delete(volumeId);
  }
}

function describe(row: VolumeRow): string {
  return `Stratus volume ${row.name} (${formatSize(row.sizeBytes)}, ${formatSize(row.chunkSize)} chunks)`;
}
