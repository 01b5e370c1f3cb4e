/**
 * Named shutdown steps, each run at most once, newest first, like a stack of cleanups. The gateway's
 * stop runs some of them by name in its own order (NBD first, then the commit under a deadline) and
 * then the rest; a start that fails half-way runs whatever was registered so far.
 */
import type { Logger } from "../logger";

interface Step {
  name: string;
  run(): Promise<void> | void;
}

export class ShutdownSteps {
  readonly #steps: Step[] = [];

  constructor(private readonly logger: Logger) {}

  add(name: string, run: () => Promise<void> | void): void {
    this.#steps.push({ name, run });
  }

  /**
   * Runs the named step now, if it has not run. Waits at most `boundMs` for it (a step stuck on a
   * server that is gone must not hold the stop; 0: start it and go on); resolves false when it gave
   * up waiting.
   */
  async run(name: string, boundMs?: number): Promise<boolean> {
    const index = this.#steps.findIndex((step) => step.name === name);
    if (index < 0) return true;
    const [step] = this.#steps.splice(index, 1);
    const running = Promise.resolve()
      .then(() => step!.run())
      .catch((error: unknown) => this.logger.error({ err: error, step: name }, "shutdown step failed"));
    if (boundMs === undefined) {
      await running;
      return true;
    }
    if (boundMs === 0) return false;
    const finished = await settlesWithin(running, boundMs);
    if (!finished) this.logger.warn({ step: name, waitedMs: boundMs }, "shutdown step did not finish in time; going on without it");
    return finished;
  }

  /** Forgets the named steps without running them (what they would release is already gone). */
  skip(...names: string[]): void {
    for (const name of names) {
      const index = this.#steps.findIndex((step) => step.name === name);
      if (index >= 0) this.#steps.splice(index, 1);
    }
  }

  /** Runs every remaining step, newest first, each bounded by `boundMs` when given. */
  async runRest(boundMs?: number): Promise<void> {
    while (this.#steps.length > 0) await this.run(this.#steps[this.#steps.length - 1]!.name, boundMs);
  }
}

/** Resolves true once `promise` settles, or false after `ms`, whichever comes first. */
export function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    promise.then(done, done);
  });
}
