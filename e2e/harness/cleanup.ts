/**
 * Undo steps registered as resources are made (mounts, loop devices, processes, temp dirs) and run in
 * reverse order even when the test failed halfway. One failing step does not stop the others.
 */
export class CleanupStack {
  private readonly steps: { what: string; undo: () => Promise<unknown> | unknown }[] = [];

  /** Registers `undo`; returns a function that runs it now (once) and removes it from the stack. */
  push(what: string, undo: () => Promise<unknown> | unknown): () => Promise<void> {
    const step = { what, undo };
    this.steps.push(step);
    return async () => {
      const index = this.steps.indexOf(step);
      if (index < 0) return;
      this.steps.splice(index, 1);
      await undo();
    };
  }

  /** Runs every remaining step, newest first; throws one error naming every step that failed. */
  async runAll(): Promise<void> {
    const failures: string[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.undo();
      } catch (err) {
        failures.push(`${step.what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (failures.length > 0) throw new Error(`cleanup failed:\n${failures.join("\n")}`);
  }
}
