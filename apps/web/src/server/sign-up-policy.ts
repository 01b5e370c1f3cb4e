/**
 * Who may sign up. STRATUS_SIGNUP decides when set. Otherwise sign-up is open only on the embedded
 * default with the dashboard on loopback (STRATUS_WEB_HOST, and STRATUS_PUBLIC_URL if set): nobody else
 * can reach it. Anywhere else (`next start` included: it cannot tell where it is reachable from) people
 * join by an admin's invitation, and the first admin with the setup token from the log.
 */
import type { Runtime, SignUpPolicy } from "@stratus/control";
import { webEnv } from "./env";

export function signUpPolicy(runtime: Runtime): SignUpPolicy {
  const env = webEnv();
  return env.signup ?? (runtime.config.embedded && env.loopbackOnly ? "open" : "invite");
}
