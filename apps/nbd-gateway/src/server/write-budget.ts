/**
 * One budget of WRITE payload bytes for every connection of a server: a WRITE's payload is read only
 * once its length fits, so many connections writing at once cannot hold more than the budget in
 * memory (each connection alone is also capped, see transmission.ts). A single write larger than the
 * whole budget is let through when nothing else is in flight, so it can never wait forever.
 */
export class WriteBudget {
  #used = 0;
  #peak = 0;
  readonly #waiters = new Set<() => void>();

  constructor(readonly limitBytes: number) {
    if (!Number.isInteger(limitBytes) || limitBytes <= 0) throw new RangeError(`write budget must be a positive integer, got ${limitBytes}`);
  }

  get usedBytes(): number {
    return this.#used;
  }

  /** The most ever taken at once (for tests and diagnostics). */
  get peakBytes(): number {
    return this.#peak;
  }

  /** Takes `bytes` if they fit; false: call `whenRelieved` and try again then. */
  tryTake(bytes: number): boolean {
    if (this.#used > 0 && this.#used + bytes > this.limitBytes) return false;
    this.#used += bytes;
    this.#peak = Math.max(this.#peak, this.#used);
    return true;
  }

  give(bytes: number): void {
    this.#used -= bytes;
    // Wake waiters below half, so a busy budget does not wake everyone on every completion.
    if (this.#used * 2 > this.limitBytes || this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Calls `wake` once, the next time the budget has room (once per function, however often asked). */
  whenRelieved(wake: () => void): void {
    this.#waiters.add(wake);
  }

  /** Forgets a waiter (its connection is gone). */
  forget(wake: () => void): void {
    this.#waiters.delete(wake);
  }
}
