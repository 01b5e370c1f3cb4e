/**
 * Tells the control plane what this gateway is serving: every 2 s, for each volume with a connection,
 * a Redis key `<prefix>:live:<volumeId>` (TTL 10 s, so a crashed gateway's entries vanish by themselves),
 * removed as soon as the volume is no longer open here; every 10 s a row per open volume in
 * volume_samples for the charts, and once an hour samples older than 7 days are pruned.
 */
import { clearLiveState, LIVE_PUBLISH_INTERVAL_MS, publishLiveState, type LiveState } from "@stratus/control";
import { insertVolumeSamples, pruneVolumeSamples, type Db } from "@stratus/db";
import type { Redis } from "ioredis";
import type { OpenEngineInfo } from "../engine/volume-engines";
import type { Logger } from "../logger";

export const SAMPLE_INTERVAL_MS = 10_000;
export const SAMPLE_RETENTION_MS = 7 * 24 * 3600_000;
const PRUNE_INTERVAL_MS = 3600_000;

export interface LivePublisherOptions {
  redis: Redis;
  prefix: string;
  gatewayId: string;
  db: Db;
  openEngines(): Promise<OpenEngineInfo[]>;
  logger: Logger;
  publishIntervalMs?: number;
  sampleIntervalMs?: number;
}

export class LivePublisher {
  readonly #options: LivePublisherOptions;
  #published = new Set<string>();
  #timers: NodeJS.Timeout[] = [];
  #running: Promise<void> = Promise.resolve();
  #lastPrune = 0;

  constructor(options: LivePublisherOptions) {
    this.#options = options;
  }

  start(): void {
    const every = (ms: number, fn: () => Promise<void>) => {
      const timer = setInterval(() => void this.#serial(fn), ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.#options.publishIntervalMs ?? LIVE_PUBLISH_INTERVAL_MS, () => this.publish());
    every(this.#options.sampleIntervalMs ?? SAMPLE_INTERVAL_MS, () => this.sample());
  }

  /** Publish now (e.g. right after a volume closed, so "attached" clears at once). */
  poke(): void {
    void this.#serial(() => this.publish());
  }

  async publish(): Promise<void> {
    const { redis, prefix, gatewayId } = this.#options;
    const engines = await this.#options.openEngines();
    const now = Date.now();
    const current = new Set<string>();
    for (const engine of engines) {
      current.add(engine.volumeId);
      const stats = engine.volume.stats();
      const state: LiveState = {
        gatewayId,
        connections: engine.connections,
        attachedSince: engine.openedAt,
        clients: [...engine.clients],
        stats: { ...stats, readBytes: engine.traffic.readBytes, writtenBytes: engine.traffic.writtenBytes },
        updatedAt: now,
      };
      await publishLiveState(redis, prefix, engine.volumeId, state);
    }
    for (const volumeId of this.#published) {
      if (!current.has(volumeId)) await clearLiveState(redis, prefix, volumeId);
    }
    this.#published = current;
  }

  async sample(): Promise<void> {
    const engines = await this.#options.openEngines();
    const at = new Date();
    const rows = engines.map((engine) => {
      const stats = engine.volume.stats();
      return {
        volumeId: engine.volumeId,
        at,
        storedBytes: stats.storedBytes,
        logicalWrittenBytes: Math.round(stats.storedBytes * stats.compressionRatio),
        readBytes: engine.traffic.readBytes,
        writtenBytes: engine.traffic.writtenBytes,
      };
    });
    await insertVolumeSamples(this.#options.db, rows);
    if (at.getTime() - this.#lastPrune > PRUNE_INTERVAL_MS) {
      this.#lastPrune = at.getTime();
      await pruneVolumeSamples(this.#options.db, new Date(at.getTime() - SAMPLE_RETENTION_MS));
    }
  }

  /** Stops the timers and removes this gateway's live entries. */
  async stop(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    await this.#running;
    for (const volumeId of this.#published) await clearLiveState(this.#options.redis, this.#options.prefix, volumeId).catch(() => undefined);
    this.#published.clear();
  }

  /** One tick at a time; a failed tick is logged and the next one tries again. */
  #serial(fn: () => Promise<void>): Promise<void> {
    this.#running = this.#running.then(fn).catch((error: unknown) => this.#options.logger.warn({ err: error }, "live state / samples tick failed"));
    return this.#running;
  }
}
