/**
 * Fixed-window rate limits in Redis (INCR + EXPIRE), e.g. login attempts per email and per IP. Keys
 * hold a hash of what they count (an email is personal data; it need not sit in Redis in clear).
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { ServiceError } from "./errors";

export interface RateLimit {
  /** What is limited, in the key and message: "login". */
  name: string;
  max: number;
  windowSeconds: number;
}

export const LOGIN_LIMIT: RateLimit = { name: "login", max: 10, windowSeconds: 15 * 60 };
/** Failed sign-ins per client address (successes are refunded, so a shared address is not locked out). */
export const LOGIN_FAILURES_PER_ADDRESS: RateLimit = { name: "login-address", max: 10, windowSeconds: 15 * 60 };
/** Sign-up attempts per client address, successful or not. */
export const SIGNUP_LIMIT: RateLimit = { name: "signup", max: 5, windowSeconds: 60 * 60 };

const keyOf = (prefix: string, limit: RateLimit, subject: string) =>
  `${prefix}:rate:${limit.name}:${createHash("sha256").update(subject).digest("hex").slice(0, 32)}`;

/** Counts one attempt for each subject; TOO_MANY_REQUESTS (with retry-after) when any is over the limit. */
export async function takeRateLimit(redis: Redis, prefix: string, limit: RateLimit, subjects: readonly string[]): Promise<void> {
  for (const subject of subjects) {
    const key = keyOf(prefix, limit, subject);
    const [[, count], [, ttl]] = (await redis.multi().incr(key).ttl(key).exec()) as [[null, number], [null, number]];
    if (ttl < 0) await redis.expire(key, limit.windowSeconds);
    if (count > limit.max) {
      const wait = ttl > 0 ? ttl : limit.windowSeconds;
      const minutes = Math.ceil(wait / 60);
      const what = limit.name === "signup" ? "sign-up" : "sign-in";
      throw new ServiceError("TOO_MANY_REQUESTS", `too many ${what} attempts; try again in ${minutes} minute${minutes === 1 ? "" : "s"}`, {
        retryAfterSeconds: wait,
      });
    }
  }
}

/**
 * Gives back one attempt taken by takeRateLimit (a success that should not count). Counting first and
 * refunding after keeps the limit exact under parallel attempts.
 */
export async function refundRateLimit(redis: Redis, prefix: string, limit: RateLimit, subject: string): Promise<void> {
  const key = keyOf(prefix, limit, subject);
  const left = await redis.decr(key);
  if (left <= 0) await redis.del(key);
}

export async function resetRateLimit(redis: Redis, prefix: string, limit: RateLimit, subject: string): Promise<void> {
  await redis.del(keyOf(prefix, limit, subject));
}
