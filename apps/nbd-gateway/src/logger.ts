import pino, { type Logger } from "pino";
import { prettyFactory } from "pino-pretty";
import { createLogSink, type LogSink } from "./log-sink";

/** `pretty`: one readable line per entry (time, level, message, fields); `json`: JSON lines for machines. */
export type LogFormat = "pretty" | "json";

/**
 * Structured logs on stdout. Secrets must never be logged in the first place; the redaction list is a
 * second fence for fields that could carry one by accident. Lines go through a LogSink (log-sink.ts),
 * not pino's own destination: a stdout that lost its reader drops lines instead of holding the exit.
 */
export function createLogger(level: string, format: LogFormat = "json", name = "stratus", sink: LogSink = stdoutSink()): Logger {
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
  if (format === "json") return pino(options, sink);
  // In-process (no transport thread), so the last lines before an exit are printed.
  const prettify = prettyFactory({ translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,name", singleLine: true });
  return pino(options, { write: (line: string) => sink.write(prettify(line)) });
}

/** A sink on stdout whose queued lines get their bounded last try when the process exits. */
function stdoutSink(): LogSink {
  const sink = createLogSink({ fd: 1 });
  process.once("exit", () => sink.flushSync());
  return sink;
}

/** `auto` (the default) is pretty on a terminal and JSON otherwise. */
export function resolveLogFormat(setting: "auto" | LogFormat, stdoutIsTerminal: boolean): LogFormat {
  if (setting !== "auto") return setting;
  return stdoutIsTerminal ? "pretty" : "json";
}

export type { Logger };
