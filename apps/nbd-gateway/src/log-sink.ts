/**
 * Where the gateway's log lines go: a file descriptor (stdout) that may lose its reader at any time (a
 * pipe into `head`, a log shipper that died, a terminal that closed). pino's own destination buffers
 * lines and flushes them at exit with sonic-boom's flushSync, which retries a write that failed with
 * EPIPE forever, sleeping in Atomics.wait: a gateway that called process.exit with a line still
 * buffered never ended and, its main thread blocked, no longer answered SIGTERM. This sink writes each
 * line at once; a line a full pipe does not take yet waits in a bounded queue and goes out from a timer;
 * once a write fails for any other reason (EPIPE: nobody reads) every line from then on is dropped.
 * At exit, what is still queued gets a bounded last try. Logging never throws and never blocks the stop.
 */
import { writeSync } from "node:fs";

export interface LogSink {
  write(line: string): void;
  /** Writes what is still queued, giving up after `ms` (at exit: there is no event loop any more). */
  flushSync(ms?: number): void;
  /** True once the descriptor failed (its reader is gone): lines are dropped from then on. */
  readonly lost: boolean;
}

export interface LogSinkOptions {
  fd?: number;
  /** Queued bytes beyond which new lines are dropped while the reader is slow. */
  maxQueuedBytes?: number;
  /** How often queued lines are tried again while the pipe is full. */
  retryMs?: number;
  /** How long the last try at exit may take. */
  exitFlushMs?: number;
}

const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024;
const DEFAULT_RETRY_MS = 20;
const DEFAULT_EXIT_FLUSH_MS = 1_000;

export function createLogSink(options: LogSinkOptions = {}): LogSink {
  const fd = options.fd ?? 1;
  const maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
  const retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
  const queue: Buffer[] = [];
  let queuedBytes = 0;
  let lost = false;
  let retry: NodeJS.Timeout | undefined;

  /** Writes the head of the queue until it is empty or the pipe is full; false when the pipe is full. */
  const drain = (): boolean => {
    while (queue.length > 0 && !lost) {
      const head = queue[0]!;
      let written: number;
      try {
        written = writeSync(fd, head);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EAGAIN") return false;
        lost = true;
        break;
      }
      queuedBytes -= written;
      if (written === head.length) queue.shift();
      else queue[0] = head.subarray(written);
    }
    if (lost) {
      queue.length = 0;
      queuedBytes = 0;
    }
    return true;
  };

  const scheduleRetry = () => {
    if (retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      if (!drain()) scheduleRetry();
    }, retryMs);
    retry.unref();
  };

  const sink: LogSink = {
    write(line: string) {
      if (lost) return;
      const bytes = Buffer.from(line);
      if (queuedBytes + bytes.length > maxQueuedBytes) return;
      queue.push(bytes);
      queuedBytes += bytes.length;
      if (queue.length > 1) return; // behind lines a full pipe has not taken yet
      if (!drain()) scheduleRetry();
    },
    flushSync(ms = options.exitFlushMs ?? DEFAULT_EXIT_FLUSH_MS) {
      if (retry) clearTimeout(retry);
      retry = undefined;
      const deadline = Date.now() + ms;
      const pause = new Int32Array(new SharedArrayBuffer(4));
      while (!drain() && Date.now() < deadline) Atomics.wait(pause, 0, 0, Math.min(retryMs, Math.max(1, deadline - Date.now())));
      queue.length = 0;
      queuedBytes = 0;
    },
    get lost() {
      return lost;
    },
  };
  return sink;
}
