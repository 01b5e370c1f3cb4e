/**
 * When a volume commits, on the injected Clock. At a commit point (commitIdleMs after the last
 * write, and every commitIntervalMs while data is dirty) the commit runs at once if nothing was
 * written since the last client flush, else at the next flush, so the bucket holds a flush's state;
 * with no flush within an interval, the volume commits by itself. It also commits at once when
 * asked (budget past half its dirty limit, dirty chunks found at open); failures retry with backoff.
 */
import type { CacheBudget } from "../cache/cache-budget";
import { BACKGROUND_TIMER, type Clock, type ClockTimer } from "../util/clock";
import type { VolumeLogger } from "./volume-options";

export interface CommitSchedulerOptions {
  volumeId: string;
  intervalMs: number;
  /** Undefined: no idle rule, only the interval. */
  idleMs: number | undefined;
  clock: Clock;
  budget: CacheBudget;
  logger: VolumeLogger | undefined;
  isOpen(): boolean;
  dirtyChunks(): number;
  /** Runs a commit cycle (freeze, upload, land). */
  commit(): Promise<void>;
}

/** First retry after a failed commit; doubled each time up to MAX_RETRY_MS. */
export const FIRST_RETRY_MS = 50;
export const MAX_RETRY_MS = 5_000;

export class CommitScheduler {
  readonly #options: CommitSchedulerOptions;
  /** Modifications so far, and their count at the last flush call: equal = nothing unflushed. */
  #modifications = 0;
  #flushedModifications = 0;
  #intervalTimer: ClockTimer | undefined;
  /** The one idle timer: armed by a modification, re-armed while modifications keep coming. */
  #idleTimer: ClockTimer | undefined;
  /** `modifications` when the idle timer was armed: unchanged when it fires = a quiet spell. */
  #modificationsAtIdleArm = 0;
  /** A commit point passed with unflushed writes: the next flush freezes for a commit. */
  #due = false;
  /** The interval passed with unflushed writes: unless a flush commits first, its next tick does. */
  #overdue = false;
  #requested = false;
  #loop: Promise<void> | undefined;
  #retry: { timer: ClockTimer; wake: () => void } | undefined;

  constructor(options: CommitSchedulerOptions) {
    this.#options = options;
  }

  /** A write, trim or zero is being applied. */
  modifying(): void {
    this.#modifications++;
    if (this.#intervalTimer === undefined) this.#armInterval();
    if (this.#idleTimer === undefined && this.#options.idleMs !== undefined) this.#armIdle(this.#options.idleMs);
  }

  /** A client flush: everything so far is flushed. Returns whether a commit point is waiting for it. */
  flushed(): boolean {
    this.#flushedModifications = this.#modifications;
    return this.#due;
  }

  /** A commit starts on the caller's side (a flush's): the pending commit point is served. */
  committing(): void {
    this.#due = false;
    this.#overdue = false;
  }

  /** Commit as soon as possible, and again while the gateway's dirty bytes stay past half its limit. */
  requestCommit(): void {
    this.#requested = true;
    if (this.#loop !== undefined || !this.#options.isOpen()) {
      this.#retry?.wake();
      return;
    }
    // Deferred: never freeze in the middle of the write that crossed the threshold.
    this.#loop = new Promise<void>((resolve) => queueMicrotask(resolve))
      .then(() => this.#runLoop())
      .finally(() => {
        this.#loop = undefined;
      });
  }

  /** A commit that a caller waited for failed: logged, and retried in the background. */
  failed(error: unknown): void {
    this.#options.logger?.warn({ err: error, volumeId: this.#options.volumeId }, "commit failed; retrying in the background");
    this.requestCommit();
  }

  /** The volume closes: no more timers; a retry waiting for its backoff gives up. */
  stop(): void {
    this.#intervalTimer?.cancel();
    this.#intervalTimer = undefined;
    this.#idleTimer?.cancel();
    this.#idleTimer = undefined;
    this.#retry?.wake();
  }

  async #runLoop(): Promise<void> {
    const { budget, logger, volumeId } = this.#options;
    let delayMs = FIRST_RETRY_MS;
    while (this.#requested && this.#options.isOpen() && this.#options.dirtyChunks() > 0) {
      this.#requested = false;
      try {
        await this.#options.commit();
        delayMs = FIRST_RETRY_MS;
        if (budget.dirtyBytes > budget.dirtyLimitBytes / 2 && this.#options.dirtyChunks() > 0) {
          this.#requested = true;
          // A turn of the event loop first: I/O callbacks must not wait behind commits that run on
          // promises alone (a store in memory), one after another.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } catch (error) {
        logger?.warn({ err: error, volumeId, retryInMs: delayMs }, "commit failed; retrying");
        this.#requested = true;
        budget.wake();
        await this.#backoff(delayMs);
        delayMs = Math.min(delayMs * 2, MAX_RETRY_MS);
      }
      budget.wake();
    }
  }

  /** Waits `ms` on the clock, or less when woken (a new request, or stop). */
  #backoff(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        timer.cancel();
        this.#retry = undefined;
        resolve();
      };
      const timer = this.#options.clock.setTimer(wake, ms, BACKGROUND_TIMER);
      this.#retry = { timer, wake };
    });
  }

  /** Commits within the interval: at the next flush if writes came since the last one, else now. */
  #armInterval(): void {
    if (!this.#options.isOpen()) return;
    this.#intervalTimer = this.#options.clock.setTimer(
      () => {
        this.#intervalTimer = undefined;
        if (!this.#options.isOpen() || this.#options.dirtyChunks() === 0) return;
        if (this.#overdue)
          this.#commitNow(); // no flush came within a whole interval
        else this.#commitPoint(true);
        this.#armInterval();
      },
      this.#options.intervalMs,
      BACKGROUND_TIMER,
    );
  }

  /**
   * A commit point once nothing was modified for idleMs. No timer and no clock read per write: one
   * timer that, when it fires, looks whether modifications came since it was armed (then it waits
   * another idleMs), so a quiet spell is noticed within one to two idleMs. After its decision it
   * waits for the next modification to arm it again.
   */
  #armIdle(idleMs: number): void {
    if (!this.#options.isOpen()) return;
    this.#modificationsAtIdleArm = this.#modifications;
    this.#idleTimer = this.#options.clock.setTimer(
      () => {
        this.#idleTimer = undefined;
        if (!this.#options.isOpen()) return;
        if (this.#modifications !== this.#modificationsAtIdleArm)
          this.#armIdle(idleMs); // still writing
        else if (this.#options.dirtyChunks() > 0) this.#commitPoint(false);
      },
      idleMs,
      BACKGROUND_TIMER,
    );
  }

  /**
   * Commits now when nothing is unflushed (the state is a flush's), else at the next flush. A
   * point from the interval also arms its fallback: the next tick commits if no flush did by then
   * (an idle point does not, so it never shortens the time a flush has to come).
   */
  #commitPoint(fromInterval: boolean): void {
    if (this.#modifications === this.#flushedModifications) {
      this.#commitNow();
    } else {
      this.#due = true;
      if (fromInterval) this.#overdue = true;
    }
  }

  #commitNow(): void {
    this.committing();
    this.requestCommit();
  }
}
