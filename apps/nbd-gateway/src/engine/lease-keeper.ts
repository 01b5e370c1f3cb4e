/**
 * The volume leases this gateway run holds: taken when an engine opens for writing, given back when it
 * closes, and renewed together by one heartbeat every third of the TTL. A lease the heartbeat finds
 * gone (taken over, forced, deleted), or one it could not renew before it expired, is reported lost:
 * the engine must stop serving that volume at once. A live holder elsewhere is asked to hand over
 * (askHolder), and the open waits for it up to the handoff timeout.
 */
import { acquireLease, releaseLease, renewLeases, type Db, type LeaseAttempt, type LeaseHolder, type VolumeLeaseRow } from "@stratus/db";
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
   * How long an open waits for another holder to let go before it is refused: its final commit after
   * a detach, or a handoff it was asked for (STRATUS_HANDOFF_TIMEOUT). Default 30 s.
   */
  heldWaitMs?: number;
  /**
   * Asks the live holder of `lease` to flush, commit and let go; resolves with its refusal, or undefined
   * (it let go, or never answered: the wait goes on until the lease is free or the time is up).
   */
  askHolder?: (volumeId: string, lease: VolumeLeaseRow, requester: LeaseDevice) => Promise<string | undefined>;
  /**
   * A held lease is gone or expired: stop serving the volume (called once per lease). `taken`: the
   * database says another holder has it; false: it expired while the database could not be asked.
   */
  onLost: (volumeId: string, fencingToken: number, taken: boolean) => void;
}

/** An open that found the volume held: who holds it, and why the wait ended without it. */
export type HeldAttempt = Extract<LeaseAttempt, { kind: "held" }> & { refusal?: string };

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
  #renewing: Promise<void> | undefined;
  #stopped = false;

  constructor(private readonly options: LeaseKeeperOptions) {
    this.#clock = options.clock ?? systemClock;
  }

  get identity(): GatewayIdentity {
    return this.options.identity;
  }

  /**
   * Takes the volume's lease for this device. A live holder is asked once to hand over; the lease is
   * asked for again until it is free, the holder refuses, or the wait is over (then the holder is reported).
   */
  async acquire(volumeId: string, device: LeaseDevice): Promise<Extract<LeaseAttempt, { kind: "acquired" }> | HeldAttempt> {
    const deadline = this.#clock.now() + (this.options.heldWaitMs ?? 30_000);
    let answer: { refusal?: string } | undefined;
    let answering: Promise<void> | undefined;
    let askedToken: number | undefined;
    for (;;) {
      const attempt = await this.#tryAcquire(volumeId, device);
      if (attempt.kind === "acquired") return attempt;
      // Asked once per holder: one that took the volume meanwhile is asked in turn.
      if (askedToken !== attempt.lease.fencingToken && this.options.askHolder !== undefined) {
        askedToken = attempt.lease.fencingToken;
        const asked: { refusal?: string } = {};
        answer = asked;
        answering = this.options.askHolder(volumeId, attempt.lease, device).then(
          (refusal) => void (asked.refusal = refusal),
          (error: unknown) => this.options.logger.warn({ err: error, volumeId }, "asking a volume's holder to hand over failed; waiting for its lease"),
        );
      }
      if (answer?.refusal !== undefined) return { ...attempt, refusal: answer.refusal };
      if (this.#clock.now() >= deadline) return attempt;
      // The holder's answer ends the wait early ("released": ask again at once, no poll interval added).
      const wake = answering;
      answering = undefined;
      const pause = Math.min(HELD_POLL_MS, deadline - this.#clock.now());
      await (wake === undefined ? sleepOn(this.#clock, pause) : Promise.race([sleepOn(this.#clock, pause), wake]));
    }
  }

  /**
   * Whether this lease is still ours, asked before a FLUSH is acknowledged: a lease renewed within
   * half its TTL is; an older one (the process was paused, the heartbeat is late) is renewed first, so
   * a holder that was fenced while it could not tell never acknowledges a FLUSH.
   */
  async confirm(volumeId: string, token: number): Promise<boolean> {
    const held = this.#held.get(volumeId);
    if (held === undefined || held.token !== token) return false;
    if (held.expiresAt - this.#clock.now() > this.options.ttlMs / 2) return true;
    await this.#renewNow();
    return this.#held.get(volumeId)?.token === token;
  }

  /** One renewal now, shared by everyone who asks while it runs (the heartbeat's included). */
  #renewNow(): Promise<void> {
    this.#renewing ??= this.heartbeat().finally(() => (this.#renewing = undefined));
    return this.#renewing;
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
        this.#beating = this.#renewNow().finally(() => {
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
