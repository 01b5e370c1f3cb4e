/**
 * While Redis is down, ioredis and BullMQ report an error on every reconnect attempt of every
 * connection. A person needs one line saying so, then one now and then while it lasts.
 */
import type { Logger } from "../logger";

/** The same message from the same source is logged at most this often. */
export const REPEAT_EVERY_MS = 60_000;

export function throttledErrorLog(logger: Logger, message: string, now: () => number = Date.now): (error: Error) => void {
  const lastLogged = new Map<string, number>();
  return (error: Error) => {
    const at = now();
    const previous = lastLogged.get(error.message);
    if (previous !== undefined && at - previous < REPEAT_EVERY_MS) return;
    lastLogged.set(error.message, at);
    logger.warn({ err: error }, message);
  };
}
