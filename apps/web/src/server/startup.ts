/**
 * The web process's start (instrumentation.ts), for `next start` and the gateway's embedded dashboard
 * alike: the client-address hook, the runtime (under `next start` built now, so missing shared
 * settings stop the process at once), and, where sign-up is by invitation and no account exists yet, a
 * one-time setup token for the first admin in the log. On its own (not embedded) it serves /metrics
 * when STRATUS_METRICS_LISTEN is set (web-metrics.ts); the embedded one is in the gateway's.
 */
import { installPeerHeader, issueSetupToken, RUNTIME_SYMBOL } from "@stratus/control";
import { webEnv } from "./env";
import { getRegistered } from "./runtime";
import { signUpPolicy } from "./sign-up-policy";

export async function startWebProcess(): Promise<void> {
  installPeerHeader();
  const embedded = RUNTIME_SYMBOL in globalThis;
  const { runtime } = await getRegistered();
  if (!embedded) {
    const env = webEnv();
    for (const warning of env.warnings) runtime.logger.warn({}, warning);
    if (env.metrics !== undefined) {
      const { startWebMetrics } = await import("./web-metrics");
      const metrics = await startWebMetrics(env.metrics, (error) => runtime.logger.warn({ err: error }, "collecting metrics failed"));
      runtime.logger.info({ metricsUrl: metrics.url }, "metrics served");
    }
  }
  if (signUpPolicy(runtime) !== "invite") return;
  const setup = await issueSetupToken(runtime);
  if (!setup) return;
  // The one log line that carries a secret: it is how the first admin gets in.
  runtime.logger.warn(
    { expiresAt: setup.expiresAt.toISOString() },
    `no account yet, and sign-up is by invitation: the first admin signs up at ${webEnv().publicUrl ?? ""}${setup.path} (a one-time setup token; a new one is logged at each start until then)`,
  );
}
