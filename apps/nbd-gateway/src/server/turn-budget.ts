/**
 * How many request bytes all NBD connections together may hand the engine in one event-loop turn.
 * libuv reads a readable socket many times per wake-up, so a fast writer could fill whole turns while
 * upload responses, Redis replies and codec results waited. A connection that used up the turn's
 * budget pauses its socket and resumes at the next turn (setImmediate, after this turn's I/O).
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
