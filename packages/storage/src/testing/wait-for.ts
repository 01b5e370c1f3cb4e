export interface WaitForOptions {
  /** Real time before it rejects (default 10 s). */
  timeoutMs?: number;
  /** Between checks; 0 (the default): every turn of the event loop. Conditions that wait on other processes want a few ms. */
  intervalMs?: number;
}

/**
 * Resolves once `condition()` holds, checking on every turn of the event loop (or every `intervalMs`);
 * rejects after `timeoutMs` of real time. An async condition is awaited; one that throws rejects at once.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what = "condition",
  { timeoutMs = 10_000, intervalMs = 0 }: WaitForOptions = {},
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const held = condition();
    if (typeof held === "boolean" ? held : await held) return;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => (intervalMs > 0 ? setTimeout(resolve, intervalMs) : setImmediate(resolve)));
  }
}
