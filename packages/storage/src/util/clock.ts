/**
 * Time as the engine sees it: the commit timers, fill holds and retry backoff read and wait through
 * a Clock, so tests can move time by hand (testing/manual-clock.ts) instead of sleeping.
 */

/** A pending timer; `cancel` is safe to call after it fired. */
export interface ClockTimer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Runs `callback` once after `ms`. A `background` timer does not keep the process alive on its
   * own (a volume's commit timers); others do (a retry's backoff must not let a CLI exit).
   */
  setTimer(callback: () => void, ms: number, options?: { background?: boolean }): ClockTimer;
}

/** For timers that must not keep the process alive by themselves. */
export const BACKGROUND_TIMER = { background: true } as const;

/** The process's own clock and timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, ms, options) {
    const timer = setTimeout(callback, ms);
    if (options?.background === true) timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

/** Resolves after `ms` on `clock`. */
export function sleepOn(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(resolve, ms));
}
