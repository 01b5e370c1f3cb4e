import pino, { type Logger } from "pino";

/**
 * Structured logs (JSON lines on stdout). Secrets must never be logged in the first place; the
 * redaction list is a second fence for fields that could carry one by accident.
 */
export function createLogger(level: string, name = "stratus"): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: [
        "token",
        "*.token",
        "password",
        "*.password",
        "passphrase",
        "*.passphrase",
        "secretAccessKey",
        "*.secretAccessKey",
        "authorization",
        "*.authorization",
        "headers.authorization",
        "url",
        "*.databaseUrl",
      ],
      censor: "[redacted]",
    },
  });
}

export type { Logger };
