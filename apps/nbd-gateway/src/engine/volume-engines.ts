/**
 * One engine (a storage `Volume`) per open volume, shared by every NBD connection to it and
 * reference-counted, so connections see each other's writes at once (CAN_MULTI_CONN); the last to
 * leave flushes and closes it. `forScope` gives each client its ExportRegistry: an owner's volumes,
 * by name or id, resolved against the database on every open. Opening one: open-engine.ts.
 */
import type { VolumeRow } from "@stratus/db";
import { findVolumeById, findVolumeByName, isId, listVolumes } from "@stratus/db";
import { ChunkBuffers, type Volume } from "@stratus/storage";
import { formatSize } from "@stratus/control";
import { rmSync } from "node:fs";
import path from "node:path";
import { VolumeLockedError } from "../keys/key-ring";
import type { ExportRegistry, OpenedExport } from "../server/export-registry";
import { countingDevice } from "./counting-device";
import { openEngine, type Engine, type EngineDeps } from "./open-engine";

/** What the live-state publisher sees of an open engine. */
export interface OpenEngineInfo {
  volumeId: string;
  volume: Volume;
  connections: number;
  openedAt: number;
  traffic: { readBytes: number; writtenBytes: number };
  clients: string[];
}

/** Whose volumes one NBD client may list and open. */
export interface ExportScope {
  ownerId: string;
  /** null: every volume of the owner; else only these ids. */
  volumeIds: string[] | null;
  /** Shown in live state for each of its connections. */
  client: string;
}

export interface VolumeEnginesOptions extends EngineDeps {
  /** Called after an engine closed (the gateway schedules a GC then). */
  onClosed?: (volumeId: string) => void;
}

export class VolumeEngines {
  /** Keyed by volume id; the promise lets concurrent opens of one volume share one engine. */
  readonly #engines = new Map<string, Promise<Engine>>();
  /** Settled engines by id, for the upload worker's synchronous lookup. */
  readonly #open = new Map<string, Volume>();
  /** One set of chunk buffers for every volume of this gateway: memory touched once is reused by all. */
  readonly #buffers = new ChunkBuffers();
  /**
   * Engines still flushing after their last connection left; a reopen waits for them. Resolves
   * to the engine itself when its final flush failed: its dirty data lives only in that engine,
   * so the next connection must get it back rather than a fresh engine that lacks it.
   */
  readonly #closing = new Map<string, Promise<Engine | undefined>>();
  #closed = false;

  constructor(private readonly options: VolumeEnginesOptions) {}

  /** The exports one client sees: its owner's active volumes (limited to `volumeIds`), by name. */
  forScope(scope: ExportScope): ExportRegistry {
    const allowed = (row: VolumeRow | undefined): row is VolumeRow =>
      row !== undefined && row.ownerId === scope.ownerId && row.state === "active" && (scope.volumeIds === null || scope.volumeIds.includes(row.id));
    return {
      list: async () =>
        (await listVolumes(this.options.database.db, scope.ownerId)).filter(allowed).map((row) => ({ name: row.name, description: describe(row) })),
      open: async (name) => {
        const db = this.options.database.db;
        const row = isId("volume", name) ? await findVolumeById(db, name) : await findVolumeByName(db, name, scope.ownerId);
        return allowed(row) ? this.#openExport(row, scope.client) : undefined;
      },
    };
  }

  async #openExport(row: VolumeRow, client: string): Promise<OpenedExport | undefined> {
    if (this.#closed) return undefined;
    let engine: Engine;
    try {
      engine = await this.#acquire(row);
    } catch (error) {
      if (error instanceof VolumeLockedError) {
        this.options.logger.warn({ volumeId: row.id, volume: row.name }, "volume is locked: not attachable until unlocked with its passphrase");
        return undefined;
      }
      throw error;
    }
    engine.clients.push(client);
    let released = false;
    return {
      name: row.name,
      description: describe(row),
      device: countingDevice(engine.volume, engine.traffic),
      release: async () => {
        if (released) return;
        released = true;
        engine.clients.splice(engine.clients.indexOf(client), 1);
        await this.#release(row.id, engine);
      },
    };
  }

  /** The engine of a volume if some connection has it open (for stats and delete checks). */
  async get(volumeId: string): Promise<{ volume: Volume; connections: number } | undefined> {
    const pending = this.#engines.get(volumeId);
    return pending ? await pending.catch(() => undefined) : undefined;
  }

  /** The open Volume with this id, synchronously (the upload worker's lookup); closing ones included. */
  volumeById(volumeId: string): Volume | undefined {
    return this.#open.get(volumeId);
  }

  /** Settled engines with at least one connection (the live-state publisher's view). */
  async openEngines(): Promise<OpenEngineInfo[]> {
    const out: OpenEngineInfo[] = [];
    for (const [volumeId, pending] of this.#engines) {
      const engine = await pending.catch(() => undefined);
      if (engine && engine.connections > 0) out.push({ volumeId, ...engine });
    }
    return out;
  }

  openVolumeIds(): string[] {
    return [...this.#open.keys()];
  }

  /** Makes every acknowledged write of the open volumes durable in the local cache; commits nothing. */
  async syncAll(): Promise<void> {
    await Promise.all([...this.#open.values()].map((volume) => volume.syncLocally()));
  }

  /**
   * Drops every open engine without committing, as a crash would: what they hold stays in the cache
   * and the next start commits it. Returns how many had uncommitted data.
   */
  abandonAll(): number {
    this.#closed = true;
    const volumes = [...this.#open.values()];
    this.#open.clear();
    const uncommitted = volumes.filter((volume) => volume.dirtyBytes > 0).length;
    for (const volume of volumes) volume.abandon();
    return uncommitted;
  }

  /** Deletes a closed volume's cache (decrypted data) from disk: the volume was deleted or locked. */
  dropCache(volumeId: string): void {
    const dir = path.join(this.options.cacheDir, volumeId);
    rmSync(dir, { recursive: true, force: true });
    this.options.cacheBudget.removeDormant(dir);
  }

  /**
   * The volume was locked: its engine closes now (what was written is committed first) and its cache
   * goes, so no decrypted data of it stays on this gateway. Clients still attached get errors from then
   * on; the next attach needs an unlock.
   */
  async lockVolume(volumeId: string): Promise<void> {
    const pending = this.#engines.get(volumeId);
    this.#engines.delete(volumeId);
    const engine = await pending?.catch(() => undefined);
    if (engine) {
      engine.locked = true;
      await engine.volume.close();
      this.#open.delete(volumeId);
      engine.codec.release?.();
      this.options.logger.info({ volumeId }, "volume locked: engine closed");
    }
    // An engine still closing after its last client left finishes first.
    if ((await this.#closing.get(volumeId)) !== undefined) return;
    this.dropCache(volumeId);
  }

  /** Flushes and closes every engine; used at shutdown after the NBD server stopped. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    const engines = [...this.#engines.values()];
    this.#engines.clear();
    for (const unclosed of await Promise.all(this.#closing.values())) {
      if (unclosed) engines.push(Promise.resolve(unclosed));
    }
    const results = await Promise.allSettled(
      engines.map(async (pending) => {
        const engine = await pending;
        await engine.volume.close();
        engine.codec.release?.();
        this.#open.delete(engine.volume.volumeId);
      }),
    );
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    for (const failure of failed) this.options.logger.error({ err: failure.reason }, "closing a volume failed");
    if (failed.length > 0) throw new Error(`${failed.length} volume(s) could not be flushed at shutdown`);
  }

  /**
   * Commits what an earlier run of this gateway left in the cache uncommitted (it stopped before
   * uploading): opens each volume without a client, commits, and closes it. Data flushed with
   * durability=local reaches the bucket even if no client ever attaches again. A locked volume
   * waits for its unlock (the log says so); a deleted one's cache is removed.
   */
  async commitLeftovers(volumeIds: readonly string[]): Promise<void> {
    for (const volumeId of volumeIds) {
      const row = await findVolumeById(this.options.database.db, volumeId);
      if (!row || row.state !== "active") {
        this.dropCache(volumeId);
        continue;
      }
      let engine: Engine;
      try {
        engine = await this.#acquire(row);
      } catch (error) {
        const locked = error instanceof VolumeLockedError;
        this.options.logger.warn(
          { volumeId, volume: row.name, err: locked ? undefined : error },
          locked ? "volume has uncommitted data in the cache and is locked: unlock it to upload" : "cannot open a volume to commit its cached data",
        );
        continue;
      }
      try {
        await engine.volume.commit();
        this.options.logger.info({ volumeId, volume: row.name }, "committed data left in the cache by the previous run");
      } catch (error) {
        this.options.logger.error({ err: error, volumeId }, "committing data left in the cache failed; it stays cached and is retried");
      } finally {
        await this.#release(volumeId, engine);
      }
    }
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
    // The previous engine's final commit must land before this one loads the chunk map.
    const unclosed = await this.#closing.get(row.id);
    if (unclosed) return unclosed;
    const engine = await openEngine(row, this.options, this.#buffers);
    this.#open.set(row.id, engine.volume);
    this.options.logger.info({ volumeId: row.id, volume: row.name, durability: row.durability }, "volume opened");
    return engine;
  }

  async #release(volumeId: string, engine: Engine): Promise<void> {
    engine.connections -= 1;
    if (engine.locked || engine.connections > 0 || this.#engines.get(volumeId) === undefined) return;
    // Last connection gone: flush and close. Remove first so a new connection opens afresh
    // (after this close completes, via the index in the database).
    this.#engines.delete(volumeId);
    this.options.logger.info({ volumeId, dirtyBytes: engine.volume.dirtyBytes }, "volume closing");
    const closing = engine.volume.close().then(
      () => {
        this.#open.delete(volumeId);
        engine.codec.release?.();
        this.options.logger.info({ volumeId }, "volume closed");
        this.options.onClosed?.(volumeId);
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
