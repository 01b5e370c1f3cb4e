import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

/** `pretty`: one readable line per entry (time, level, message, fields); `json`: JSON lines for machines. */
export type LogFormat = "pretty" | "json";

/**
 * Structured logs on stdout. Secrets must never be logged in the first place; the redaction list is a
 * second fence for fields that could carry one by accident.
 */
export function createLogger(level: string, format: LogFormat = "json", name = "stratus"): Logger {
  const options = {
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
  };
  if (format === "json") return pino(options);
  // In-process and synchronous (no transport thread), so the last lines before an exit are printed.
  return pino(options, pretty({ sync: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,name", singleLine: true }));
}

/** `auto` (the default) is pretty on a terminal and JSON otherwise. */
export function resolveLogFormat(setting: "auto" | LogFormat, stdoutIsTerminal: boolean): LogFormat {
  if (setting !== "auto") return setting;
  return stdoutIsTerminal ? "pretty" : "json";
}

export type { Logger };
