/**
 * The web side's log: JSON lines on stdout, like the gateway's. Request bodies, headers and cookies are
 * never logged; the redaction list is a second fence.
 */
import type { VerbLogger } from "@stratus/control";

const SECRET_KEYS = /pass|token|secret|key|authorization|cookie/i;

function line(level: string, object: object, message: string): void {
  const safe = Object.fromEntries(
    Object.entries(object).map(([k, v]) => [
      k,
      SECRET_KEYS.test(k) && k !== "masterKeyId" ? "[redacted]" : v instanceof Error ? { name: v.name, message: v.message } : v,
    ]),
  );
  process.stdout.write(`${JSON.stringify({ level, time: Date.now(), name: "stratus-web", ...safe, msg: message })}\n`);
}

export const logger: VerbLogger & { debug(object: object, message: string): void } = {
  info: (object, message) => line("info", object, message),
  warn: (object, message) => line("warn", object, message),
  error: (object, message) => line("error", object, message),
  debug: () => undefined,
};
