/**
 * Next.js calls register() once when the server starts (next start, and the gateway's embedded
 * dashboard). A web process that cannot start properly (missing shared settings) stops here, saying why.
 */
export async function register(): Promise<void> {
  // eslint-disable-next-line no-restricted-properties -- Next's own runtime marker, not configuration
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { startWebProcess } = await import("./server/startup");
  try {
    await startWebProcess();
  } catch (error) {
    process.stderr.write(`stratus: the dashboard cannot start: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
