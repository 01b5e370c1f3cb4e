/**
 * One engine (a storage `Volume`) per open volume, shared by every NBD connection to it and
 * reference-counted, so connections see each other's writes at once (CAN_MULTI_CONN); the last to
 * leave flushes and closes it. `forScope` gives each client its ExportRegistry: an owner's volumes,
 * by name or id, resolved against the database on every open. Opening one: open-engine.ts.
 * An engine holds its volume's lease (lease-keeper.ts) from open to close: only the device that holds
 * it shares it; another asks it to hand over (handOff). A lost lease fences the engine: dropped
 * uncommitted, its data moved aside as an orphan set, its connections closed.
 * Over our ~400-line aim on purpose: open, close, lock, fence, hand over and release change the same
 * engine maps under one set of ordering rules, which stay easier to check in one class.
 */
import type { VolumeRow } from "@stratus/db";
import { findVolumeById, findVolumeByName, isId, listVolumes } from "@stratus/db";
import { ChunkBuffers, hasDirtyChunks, volumeCapabilities, type Volume } from "@stratus/storage";
import { rmSync } from "node:fs";
import path from "node:path";
import { VolumeLockedError } from "../keys/key-ring";
import { ExportRefusedError, type ExportRegistry, type OpenContext, type OpenedExport } from "../server/export-registry";
import { countingDevice } from "./counting-device";
import type { LeaseDevice, LeaseKeeper } from "./lease-keeper";
import { busy, describe, errorText, heldBy, withTimeout } from "./export-refusals";
import { dataKeyOf, keyAvailable, openEngine, type Engine, type EngineDeps } from "./open-engine";
import { cacheTokenStillCurrent, orphanCache, recordCacheToken, recordedCacheToken, removeOrphanSets } from "./orphan-sets";
import { SnapshotExports, splitSnapshotExport } from "./snapshot-exports";

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
  /** Shown in live state for each of its connections, and as the lease's holder. */
  client: string;
  /** The device credential (null: the local admin's plaintext loopback): the lease's device. */
  deviceCredentialId: string | null;
}

export interface VolumeEnginesOptions extends EngineDeps {
  leases: LeaseKeeper;
  /** How long an open waits for a holder on this gateway to hand the volume over (STRATUS_HANDOFF_TIMEOUT). */
  handoffTimeoutMs: number;
  /** Called after an engine closed (the gateway schedules a GC then). */
  onClosed?: (volumeId: string) => void;
  /** Called when an NBD connection opened a volume and when it let go (the gateway's attach activity: attach-activity.ts). */
  onConnection?: (change: "opened" | "closed", connection: { volume: VolumeRow; device: LeaseDevice }) => void;
  /** Called after uncommitted data was moved aside as an orphan set (the gateway records it: orphan-records.ts). */
  onOrphaned?: (moved: NonNullable<ReturnType<typeof orphanCache>>) => void;
}

export class VolumeEngines {
  /** Keyed by volume id; the promise lets concurrent opens of one volume share one engine. */
  readonly #engines = new Map<string, Promise<Engine>>();
  /** Settled engines by id (closing ones included), for the upload worker's synchronous lookup. */
  readonly #open = new Map<string, Engine>();
  /** One set of chunk buffers for every volume of this gateway: memory touched once is reused by all. */
  readonly #buffers = new ChunkBuffers();
  /**
   * Engines still flushing after their last connection left; a reopen waits for them. Resolves
   * to the engine itself when its final flush failed: its dirty data lives only in that engine,
   * so the next connection must get it back rather than a fresh engine that lacks it.
   */
  readonly #closing = new Map<string, Promise<Engine | undefined>>();
  #closed = false;
  /** Dropped uncommitted (abandonAll): the leases stay until they expire, so the next start can commit. */
  #abandoned = false;
  /** `VOL@NAME`: snapshots, read-only, with no engine or lease of their own. */
  readonly #snapshots: SnapshotExports;

  constructor(private readonly options: VolumeEnginesOptions) {
    this.#snapshots = new SnapshotExports(options);
  }

  /** The exports one client sees: its owner's active volumes (limited to `volumeIds`), by name. */
  forScope(scope: ExportScope): ExportRegistry {
    const allowed = (row: VolumeRow | undefined): row is VolumeRow =>
      row !== undefined && row.ownerId === scope.ownerId && row.state === "active" && (scope.volumeIds === null || scope.volumeIds.includes(row.id));
    return {
      list: async () => {
        const rows = (await listVolumes(this.options.database.db, scope.ownerId)).filter(allowed);
        return [...rows.map((row) => ({ name: row.name, description: describe(row) })), ...(await this.#snapshots.list(rows))];
      },
      open: async (name, context?: OpenContext) => {
        const snapshot = splitSnapshotExport(name);
        if (snapshot) {
          const volume = await this.#find(snapshot.volume, scope.ownerId);
          return allowed(volume) && !this.#closed ? this.#snapshots.open(volume, snapshot.snapshot) : undefined;
        }
        const row = await this.#find(name, scope.ownerId);
        const device = { deviceCredentialId: scope.deviceCredentialId, holderName: scope.client, clientAddress: context?.clientAddress ?? null };
        return allowed(row) ? this.#openExport(row, device) : undefined;
      },
      // INFO takes no lease and opens nothing: the row (or this gateway's open engine) answers.
      describe: async (name) => {
        const snapshot = splitSnapshotExport(name);
        if (snapshot) {
          const volume = await this.#find(snapshot.volume, scope.ownerId);
          return allowed(volume) ? this.#snapshots.describe(volume, snapshot.snapshot) : undefined;
        }
        const row = await this.#find(name, scope.ownerId);
        if (!allowed(row) || !(await keyAvailable(row, this.options))) return undefined;
        const size = this.#open.get(row.id)?.volume.size ?? row.sizeBytes;
        return { name: row.name, description: describe(row), size, capabilities: volumeCapabilities(row.chunkSize) };
      },
    };
  }

  #find(name: string, ownerId: string): Promise<VolumeRow | undefined> {
    const db = this.options.database.db;
    return isId("volume", name) ? findVolumeById(db, name) : findVolumeByName(db, name, ownerId);
  }

  async #openExport(row: VolumeRow, device: LeaseDevice): Promise<OpenedExport | undefined> {
    if (this.#closed) return undefined;
    const client = device.holderName;
    let engine: Engine;
    try {
      engine = await this.#acquire(row, device);
    } catch (error) {
      if (error instanceof VolumeLockedError) {
        this.options.logger.warn({ volumeId: row.id, volume: row.name }, "volume is locked: not attachable until unlocked with its passphrase");
        return undefined;
      }
      throw error;
    }
    engine.clients.push(client);
    this.options.onConnection?.("opened", { volume: row, device });
    let released = false;
    const listeners: { revoked?: () => void; handoff?: () => void } = {};
    const leases = this.options.leases;
    const token = engine.lease.fencingToken;
    return {
      name: row.name,
      description: describe(row),
      device: countingDevice(engine.volume, engine.meter, () => leases.confirm(row.id, token)),
      release: async () => {
        if (released) return;
        released = true;
        engine.clients.splice(engine.clients.indexOf(client), 1);
        if (listeners.revoked) engine.revoked.delete(listeners.revoked);
        if (listeners.handoff) engine.handoffs.delete(listeners.handoff);
        this.options.onConnection?.("closed", { volume: row, device });
        await this.#release(row.id, engine);
      },
      onRevoked: (listener) => {
        listeners.revoked = listener;
        if (engine.fenced) listener();
        else engine.revoked.add(listener);
      },
      onHandoff: (listener) => {
        listeners.handoff = listener;
        if (engine.handingOffTo !== undefined) listener();
        else engine.handoffs.add(listener);
      },
    };
  }

  /**
   * Commits the volume this gateway holds with `token` now (a snapshot is being taken): resolves once
   * every write acknowledged before the call is in the bucket and the database's map.
   */
  async commitHeld(volumeId: string, token: number): Promise<void> {
    const engine = this.#open.get(volumeId);
    if (engine === undefined || engine.fenced || engine.lease.fencingToken !== token) throw new Error("this gateway no longer holds the volume");
    await engine.volume.commit();
  }

  /**
   * Opens a volume that an import job is filling ('importing': no client scope lists or opens it), as
   * the holder "import". Each call is one more connection on the shared engine; release each one.
   */
  async openForImport(row: VolumeRow): Promise<OpenedExport> {
    if (row.state !== "importing") throw new ExportRefusedError(`volume ${row.name} is not being imported`);
    const opened = await this.#openExport(row, { deviceCredentialId: null, holderName: "import", clientAddress: null });
    if (!opened) throw new ExportRefusedError(`volume ${row.name} cannot be opened for its import`);
    return opened;
  }

  /** The engine of a volume if some connection has it open (for stats and delete checks). */
  async get(volumeId: string): Promise<{ volume: Volume; connections: number } | undefined> {
    const engine = await this.#engines.get(volumeId)?.catch(() => undefined);
    return engine?.fenced === true ? undefined : engine;
  }

  /** The open Volume with this id, synchronously (the upload worker's lookup); closing ones included. */
  volumeById(volumeId: string): Volume | undefined {
    return this.#open.get(volumeId)?.volume;
  }

  /** Settled engines with at least one connection (the live-state publisher's view). */
  async openEngines(): Promise<OpenEngineInfo[]> {
    const out: OpenEngineInfo[] = [];
    for (const [volumeId, pending] of this.#engines) {
      const engine = await pending.catch(() => undefined);
      if (engine && !engine.fenced && engine.connections > 0) out.push({ volumeId, ...engine });
    }
    return out;
  }

  openVolumeIds(): string[] {
    return [...this.#open.keys()];
  }

  /** Makes every acknowledged write of the open volumes durable in the local cache; commits nothing. */
  async syncAll(): Promise<void> {
    await Promise.all([...this.#open.values()].map((engine) => engine.volume.syncLocally()));
  }

  /**
   * Drops every open engine without committing, as a crash would: what they hold stays in the cache
   * and the next start commits it. Returns how many had uncommitted data.
   */
  abandonAll(): number {
    this.#closed = true;
    this.#abandoned = true;
    const volumes = [...this.#open.values()].map((engine) => engine.volume);
    this.#open.clear();
    const uncommitted = volumes.filter((volume) => volume.dirtyBytes > 0).length;
    for (const volume of volumes) volume.abandon();
    return uncommitted;
  }

  /**
   * Deletes a closed volume's cache (decrypted data) from disk: the volume was deleted or locked. A
   * deleted volume's orphan sets go too (`deleted`); a locked one's stay to be exported or discarded.
   */
  dropCache(volumeId: string, options: { deleted?: boolean } = {}): void {
    const dir = path.join(this.options.cacheDir, volumeId);
    rmSync(dir, { recursive: true, force: true });
    this.options.cacheBudget.removeDormant(dir);
    if (options.deleted === true) removeOrphanSets(this.options.cacheDir, volumeId);
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
      await this.options.leases.release(volumeId, engine.lease.fencingToken);
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
        if (engine.fenced) return;
        await engine.volume.close();
        engine.codec.release?.();
        this.#open.delete(engine.volume.volumeId);
        await this.#giveBack(engine);
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
   * waits for its unlock (the log says so); a deleted one's cache is removed. Data written under a
   * lease someone has taken since is never committed: it becomes an orphan set.
   */
  async commitLeftovers(volumeIds: readonly string[]): Promise<void> {
    for (const volumeId of volumeIds) {
      const row = await findVolumeById(this.options.database.db, volumeId);
      if (!row || row.state !== "active") {
        this.dropCache(volumeId, { deleted: true });
        continue;
      }
      const recorded = recordedCacheToken(path.join(this.options.cacheDir, volumeId));
      if (recorded !== undefined && row.fencingToken !== recorded) {
        this.#orphan(volumeId, recorded, "the volume was taken by another holder since this data was written");
        continue;
      }
      let engine: Engine;
      try {
        engine = await this.#acquire(row, { deviceCredentialId: null, holderName: "local", clientAddress: null });
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

  async #acquire(row: VolumeRow, device: LeaseDevice): Promise<Engine> {
    let pending = this.#engines.get(row.id);
    if (!pending) {
      pending = this.#openEngine(row, device);
      this.#engines.set(row.id, pending);
      // A failed open must not poison later attempts.
      pending.catch(() => {
        if (this.#engines.get(row.id) === pending) this.#engines.delete(row.id);
      });
    }
    const engine = await pending;
    if (engine.fenced) {
      // A new open must not share the fenced engine: it gets a lease and an engine of its own.
      if (this.#engines.get(row.id) === pending) this.#engines.delete(row.id);
      return this.#acquire(row, device);
    }
    if (engine.handingOffTo !== undefined) {
      if (engine.lease.deviceCredentialId === device.deviceCredentialId)
        throw new ExportRefusedError(`volume ${row.name} is being handed over to ${engine.handingOffTo}`);
      await engine.ended;
      return this.#acquire(row, device);
    }
    // Multi-conn is for one device: another one asks it to hand over, and waits for that.
    if (engine.lease.deviceCredentialId !== device.deviceCredentialId) {
      const outcome = await withTimeout(this.handOff(row.id, engine.lease.fencingToken, device.holderName), this.options.handoffTimeoutMs);
      if (outcome === undefined) throw busy(row, { holderName: engine.lease.holderName, since: new Date(engine.openedAt) }, this.#tooLong());
      if (outcome.outcome === "refused") throw busy(row, { holderName: engine.lease.holderName, since: new Date(engine.openedAt) }, outcome.reason);
      return this.#acquire(row, device);
    }
    engine.connections += 1;
    return engine;
  }

  #tooLong(): string {
    return `it did not hand over within ${Math.round(this.options.handoffTimeoutMs / 1000)}s (STRATUS_HANDOFF_TIMEOUT)`;
  }

  /**
   * Hands the volume held under `token` to another device: its connections finish what is in flight,
   * are told NBD_ESHUTDOWN and disconnect; the engine then closes as after a last detach (flush,
   * commit, lease given back). Refused when that final commit fails: the data stays here, and so
   * does the lease. A volume not held here under that token is "released": nothing of it is here.
   */
  async handOff(volumeId: string, token: number, requester: string): Promise<{ outcome: "released" } | { outcome: "refused"; reason: string }> {
    // An engine still opening (its lease taken, its map loading) is handed over once it is open.
    const engine = this.#open.get(volumeId) ?? (await this.#engines.get(volumeId)?.catch(() => undefined));
    if (engine === undefined || engine.lease.fencingToken !== token || engine.fenced) return { outcome: "released" };
    if (engine.handingOffTo === undefined) {
      engine.handingOffTo = requester;
      this.options.logger.info(
        { volumeId, fencingToken: token, holder: engine.lease.holderName, requester, connections: engine.connections },
        "handing the volume over: finishing in-flight requests, then flush, commit and let go",
      );
      for (const listener of engine.handoffs) listener();
      engine.handoffs.clear();
    }
    const end = await engine.ended;
    if (end.kind === "flush-failed") {
      engine.handingOffTo = undefined;
      return { outcome: "refused", reason: `the holder could not commit its data (${errorText(end.error)}); it keeps the volume` };
    }
    return { outcome: "released" };
  }

  async #openEngine(row: VolumeRow, device: LeaseDevice): Promise<Engine> {
    // The previous engine's final commit must land before this one loads the chunk map.
    const unclosed = await this.#closing.get(row.id);
    if (unclosed && !unclosed.fenced) {
      unclosed.ended = new Promise((resolve) => (unclosed.end = resolve));
      return unclosed;
    }
    // A locked volume fails here, before it could take (and raise) the lease.
    const dataKey = await dataKeyOf(row, this.options);
    const leases = this.options.leases;
    const attempt = await leases.acquire(row.id, device);
    if (attempt.kind === "held") throw busy(row, heldBy(attempt.lease, leases.identity.gatewayId), attempt.refusal ?? this.#tooLong());
    const fencingToken = attempt.lease.fencingToken;
    let engine: Engine;
    try {
      this.#claimCache(row.id, fencingToken);
      engine = await openEngine(
        row,
        dataKey,
        {
          fencingToken,
          deviceCredentialId: device.deviceCredentialId,
          holderName: device.holderName,
          onConflict: () => this.#checkFenced(row.id, fencingToken),
        },
        this.options,
        this.#buffers,
      );
    } catch (error) {
      await leases.release(row.id, fencingToken);
      throw error;
    }
    this.#open.set(row.id, engine);
    this.options.logger.info({ volumeId: row.id, volume: row.name, durability: row.durability, fencingToken, holder: device.holderName }, "volume opened");
    return engine;
  }

  /**
   * Before an engine opens under `token`: dirty data the cache holds from a lease someone took since
   * goes aside (never committed over the newer map); then the cache records the new token.
   */
  #claimCache(volumeId: string, token: number): void {
    const dir = path.join(this.options.cacheDir, volumeId);
    const recorded = recordedCacheToken(dir);
    if (recorded !== undefined && !cacheTokenStillCurrent(recorded, token) && hasDirtyChunks(dir)) {
      this.#orphan(volumeId, recorded, "the volume was taken by another holder since this data was written");
    }
    recordCacheToken(dir, token);
  }

  /** A commit was refused: fenced if the volume's token moved past ours (or the volume is gone). */
  #checkFenced(volumeId: string, token: number): void {
    findVolumeById(this.options.database.db, volumeId).then(
      (row) => {
        if (row === undefined || row.fencingToken !== token) this.fence(volumeId, token, "a commit was refused: another holder took the volume");
      },
      (error: unknown) => this.options.logger.warn({ err: error, volumeId }, "could not check a refused commit's fencing token"),
    );
  }

  /**
   * The lease under `token` is lost: the engine stops at once (every later request fails, nothing more
   * is committed) and its connections are closed. Its uncommitted data moves aside as an orphan set;
   * with `keepCache` (the lease expired unrenewed, nobody may have taken it) it stays in the cache,
   * and the next open commits it only if nobody took the volume meanwhile (#claimCache).
   */
  fence(volumeId: string, token: number, reason: string, options: { keepCache?: boolean } = {}): void {
    const engine = this.#open.get(volumeId);
    if (engine === undefined || engine.fenced || engine.lease.fencingToken !== token) return;
    engine.fenced = true;
    this.options.leases.forget(volumeId, token);
    this.#open.delete(volumeId);
    const dirtyBytes = engine.volume.dirtyBytes;
    engine.volume.abandon();
    engine.codec.release?.();
    this.options.logger.error({ volumeId, fencingToken: token, dirtyBytes, reason }, "volume fenced: stopped serving it without committing");
    if (dirtyBytes > 0 && options.keepCache !== true) this.#orphan(volumeId, token, reason);
    for (const close of engine.revoked) close();
    engine.revoked.clear();
    engine.end({ kind: "fenced" });
  }

  /** Gives the lease back after a clean close; not after abandonAll, whose data still needs it. */
  async #giveBack(engine: Engine): Promise<void> {
    if (!this.#abandoned) await this.options.leases.release(engine.volume.volumeId, engine.lease.fencingToken);
  }

  #orphan(volumeId: string, token: number, reason: string): void {
    const dir = path.join(this.options.cacheDir, volumeId);
    this.options.cacheBudget.removeDormant(dir);
    const moved = orphanCache(this.options.cacheDir, volumeId, token, reason);
    if (moved)
      this.options.logger.warn(
        { volumeId, fencingToken: token, orphanSet: moved.dir, bytes: moved.set.bytes },
        "uncommitted data kept aside as an orphan set: it is never committed",
      );
    if (moved) this.options.onOrphaned?.(moved);
  }

  async #release(volumeId: string, engine: Engine): Promise<void> {
    engine.connections -= 1;
    if (engine.fenced || engine.locked || engine.connections > 0 || this.#engines.get(volumeId) === undefined) return;
    // Last connection gone: flush and close. Remove first so a new connection opens afresh
    // (after this close completes, via the index in the database).
    this.#engines.delete(volumeId);
    this.options.logger.info({ volumeId, dirtyBytes: engine.volume.dirtyBytes }, "volume closing");
    const closing = engine.volume.close().then(
      async () => {
        if (engine.fenced) return undefined; // fenced while closing: fence() cleaned up
        this.#open.delete(volumeId);
        engine.codec.release?.();
        await this.#giveBack(engine);
        this.options.logger.info({ volumeId }, "volume closed");
        this.options.onClosed?.(volumeId);
        engine.end({ kind: "closed" });
        return undefined;
      },
      (error: unknown) => {
        if (engine.fenced) return undefined;
        this.options.logger.error({ err: error, volumeId }, "flushing a volume on last disconnect failed; keeping it open");
        engine.end({ kind: "flush-failed", error });
        return engine;
      },
    );
    this.#closing.set(volumeId, closing);
    await closing;
    if (this.#closing.get(volumeId) === closing) this.#closing.delete(volumeId);
  }
}
