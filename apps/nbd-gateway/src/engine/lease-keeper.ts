/**
 * The volume leases this gateway run holds: taken when an engine opens for writing, given back when it
 * closes, and renewed together by one heartbeat every third of the TTL. A lease the heartbeat finds
 * gone (taken over, forced, deleted), or one it could not renew before it expired, is reported lost:
 * the engine must stop serving that volume at once.
 */
import { acquireLease, releaseLease, renewLeases, type Db, type LeaseAttempt, type LeaseHolder } from "@stratus/db";
import { BACKGROUND_TIMER, sleepOn, systemClock, type Clock, type ClockTimer } from "@stratus/storage";
import type { Logger } from "pino";
import type { GatewayIdentity } from "../gateway/gateway-identity";

/** The device side of a holder: which client of this gateway holds it. */
export type LeaseDevice = Pick<LeaseHolder, "deviceCredentialId" | "holderName" | "clientAddress">;

export interface LeaseKeeperOptions {
  db: Db;
  identity: GatewayIdentity;
  ttlMs: number;
  logger: Logger;
  /** Heartbeats run on it (tests move a ManualClock). */
  clock?: Clock;
  /**
   * How long an open waits for another holder to let go before it is refused: a device that just
   * detached through another gateway may still be finishing its final commit. Default 5 s.
   */
  heldWaitMs?: number;
  /**
   * A held lease is gone or expired: stop serving the volume (called once per lease). `taken`: the
   * database says another holder has it; false: it expired while the database could not be asked.
   */
  onLost: (volumeId: string, fencingToken: number, taken: boolean) => void;
}

/** How often a waiting open asks again whether the holder let go. */
const HELD_POLL_MS = 100;

interface Held {
  token: number;
  /** Until when the lease is ours for sure, by our clock (pushed back by each renewal). */
  expiresAt: number;
}

export class LeaseKeeper {
  readonly #held = new Map<string, Held>();
  readonly #clock: Clock;
  #timer: ClockTimer | undefined;
  #beating: Promise<void> | undefined;
  #stopped = false;

  constructor(private readonly options: LeaseKeeperOptions) {
    this.#clock = options.clock ?? systemClock;
  }

  get identity(): GatewayIdentity {
    return this.options.identity;
  }

  /** Takes the volume's lease for this device, or reports the live holder once the wait for it to go is over. */
  async acquire(volumeId: string, device: LeaseDevice): Promise<LeaseAttempt> {
    const deadline = this.#clock.now() + (this.options.heldWaitMs ?? 5_000);
    for (;;) {
      const attempt = await this.#tryAcquire(volumeId, device);
      if (attempt.kind === "acquired" || this.#clock.now() >= deadline) return attempt;
      await sleepOn(this.#clock, Math.min(HELD_POLL_MS, deadline - this.#clock.now()));
    }
  }

  async #tryAcquire(volumeId: string, device: LeaseDevice): Promise<LeaseAttempt> {
    const now = this.#clock.now();
    const attempt = await acquireLease(this.options.db, {
      volumeId,
      holder: { ...this.options.identity, ...device },
      ttlMs: this.options.ttlMs,
      now: new Date(now),
    });
    if (attempt.kind === "acquired") {
      this.#held.set(volumeId, { token: attempt.lease.fencingToken, expiresAt: now + this.options.ttlMs });
      if (attempt.previous !== undefined && attempt.previous.fencingToken !== attempt.lease.fencingToken) {
        this.options.logger.info(
          { volumeId, fencingToken: attempt.lease.fencingToken, previousHolder: attempt.previous.holderName, previousGateway: attempt.previous.gatewayId },
          "took over an expired or earlier lease",
        );
      }
    }
    return attempt;
  }

  /** Gives the lease back (the engine closed after its final commit). */
  async release(volumeId: string, token: number): Promise<void> {
    if (this.#held.get(volumeId)?.token === token) this.#held.delete(volumeId);
    try {
      await releaseLease(this.options.db, volumeId, token);
    } catch (error) {
      // It expires on its own; until then another device is refused.
      this.options.logger.warn({ err: error, volumeId }, "releasing a volume lease failed; it expires on its own");
    }
  }

  /** Stops renewing this lease without releasing it (the engine was fenced). */
  forget(volumeId: string, token: number): void {
    if (this.#held.get(volumeId)?.token === token) this.#held.delete(volumeId);
  }

  heldTokens(): Map<string, number> {
    return new Map([...this.#held].map(([volumeId, held]) => [volumeId, held.token]));
  }

  start(): void {
    this.#stopped = false;
    this.#schedule();
  }

  /** Stops the heartbeat; the leases still held expire unless released. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#beating;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#clock.setTimer(
      () => {
        this.#beating = this.heartbeat().finally(() => {
          this.#beating = undefined;
          this.#schedule();
        });
      },
      Math.max(1, Math.floor(this.options.ttlMs / 3)),
      BACKGROUND_TIMER,
    );
  }

  /** Renews every held lease in one statement; reports those this run no longer holds. */
  async heartbeat(): Promise<void> {
    const held = this.heldTokens();
    if (held.size === 0) return;
    const now = this.#clock.now();
    let lost: string[];
    let taken = true;
    try {
      lost = await renewLeases(this.options.db, { ...this.options.identity, held, ttlMs: this.options.ttlMs, now: new Date(now) });
      for (const volumeId of held.keys()) {
        const entry = this.#held.get(volumeId);
        if (entry !== undefined && entry.token === held.get(volumeId)) entry.expiresAt = now + this.options.ttlMs;
      }
    } catch (error) {
      // Unrenewed, a lease is ours only until it expires: past that another gateway may hold it.
      lost = [...held.keys()].filter((volumeId) => (this.#held.get(volumeId)?.expiresAt ?? 0) <= this.#clock.now());
      taken = false;
      this.options.logger.warn({ err: error, expiring: lost.length }, "renewing volume leases failed");
    }
    for (const volumeId of lost) {
      const token = held.get(volumeId)!;
      if (this.#held.get(volumeId)?.token !== token) continue; // released meanwhile
      this.#held.delete(volumeId);
      this.options.logger.warn({ volumeId, fencingToken: token }, "volume lease lost: this gateway stops serving the volume");
      this.options.onLost(volumeId, token, taken);
    }
  }
}
