import type { Clock, ClockTimer } from "../util/clock";

interface Pending {
  at: number;
  serial: number;
  callback: () => void;
}

/** A Clock that moves only when a test calls `advance`: timers due by then fire in time order. */
export class ManualClock implements Clock {
  #now: number;
  #serial = 0;
  readonly #pending = new Set<Pending>();

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, ms: number): ClockTimer {
    const pending: Pending = { at: this.#now + Math.max(0, ms), serial: this.#serial++, callback };
    this.#pending.add(pending);
    return { cancel: () => this.#pending.delete(pending) };
  }

  /** Timers not fired yet. */
  get pendingTimers(): number {
    return this.#pending.size;
  }

  /**
   * Moves time forward by `ms`, firing each timer that falls due on the way at its own time (a
   * timer set by a callback fires too if it is due within the step). Awaits a macrotask after each,
   * so the promises its callback settled have run before the next one fires.
   */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      let next: Pending | undefined;
      for (const pending of this.#pending) {
        if (pending.at <= until && (next === undefined || pending.at < next.at || (pending.at === next.at && pending.serial < next.serial))) next = pending;
      }
      if (next === undefined) break;
      this.#pending.delete(next);
      this.#now = Math.max(this.#now, next.at);
      next.callback();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.#now = until;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
