/**
 * How many request bytes all NBD connections together may hand the engine in one turn of the event
 * loop before they stop reading until the next turn.
 *
 * A fast writer keeps its sockets readable all the time, and libuv reads a readable socket up to 32
 * times per wake-up: with nbdcopy's four connections and 512 KiB reads, one turn of the loop took in
 * tens of MiB of writes (each copied into the cache) before it served anything else. The uploads'
 * HTTP responses, Redis replies and codec results waited behind those turns, and during a fast copy
 * the bucket received nothing for half a second at a time (bench/README.md). A connection that has
 * used up the turn's budget pauses its socket and resumes at the next turn (setImmediate, right after
 * this turn's I/O callbacks), so everything else gets the loop at least every few milliseconds.
 */
export const TURN_BUDGET_BYTES = 4 * 1024 * 1024;

export class TurnBudget {
  #spent = 0;
  #waiting: Array<() => void> = [];
  #scheduled = false;

  constructor(readonly limit = TURN_BUDGET_BYTES) {}

  /** Counts bytes taken in during this turn. */
  spend(bytes: number): void {
    this.#spent += bytes;
    this.#schedule();
  }

  get exhausted(): boolean {
    return this.#spent >= this.limit;
  }

  /** Calls `resume` at the start of the next turn, when the budget is whole again. */
  waitForNextTurn(resume: () => void): void {
    this.#waiting.push(resume);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#spent = 0;
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const resume of waiting) resume();
    });
  }
}

/** The one budget every connection of this process shares (they share one event loop). */
export const sharedTurnBudget = new TurnBudget();
