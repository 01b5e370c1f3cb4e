import { describe, expect, it, vi } from "vitest";
import type { Logger } from "../logger";
import { REPEAT_EVERY_MS, throttledErrorLog } from "./error-log";

describe("throttledErrorLog", () => {
  it("logs an error once, repeats it only after a while, and a different error at once", () => {
    const warn = vi.fn();
    let now = 0;
    const log = throttledErrorLog({ warn } as unknown as Logger, "redis trouble", () => now);
    const refused = new Error("connect ECONNREFUSED /x/redis.sock");
    log(refused);
    now += 1_000;
    log(refused);
    log(new Error("connect ENOENT /x/redis.sock"));
    now += REPEAT_EVERY_MS;
    log(refused);
    expect(warn.mock.calls.map(([fields]) => (fields as { err: Error }).err.message)).toEqual([
      "connect ECONNREFUSED /x/redis.sock",
      "connect ENOENT /x/redis.sock",
      "connect ECONNREFUSED /x/redis.sock",
    ]);
  });
});
