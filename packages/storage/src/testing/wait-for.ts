/** Resolves once `condition()` holds, checking on every turn of the event loop; rejects after `timeoutMs` of real time. */
export async function waitFor(condition: () => boolean, what = "condition", timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
