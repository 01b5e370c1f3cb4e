import { describe, expect, it } from "vitest";
import { SharedBufferPool } from "./shared-buffers";

describe("SharedBufferPool", () => {
  it("hands out shared buffers of the asked length and reuses released memory", () => {
    const pool = new SharedBufferPool();
    const first = pool.acquire(1_000_000);
    expect(first.length).toBe(1_000_000);
    expect(first.buffer).toBeInstanceOf(SharedArrayBuffer);
    const memory = first.buffer;
    pool.release(first);
    expect(pool.freeCount).toBe(1);
    // A slightly shorter chunk (a volume's last one) fits the same memory.
    const second = pool.acquire(999_000);
    expect(second.buffer).toBe(memory);
    expect(second.length).toBe(999_000);
    expect(pool.freeCount).toBe(0);
  });

  it("ignores buffers it did not lend and a second release of the same one", () => {
    const pool = new SharedBufferPool();
    pool.release(Buffer.alloc(1024));
    pool.release(Buffer.from(new SharedArrayBuffer(65_536)));
    pool.release(null);
    expect(pool.freeCount).toBe(0);
    const lent = pool.acquire(4096);
    pool.release(lent);
    pool.release(lent);
    expect(pool.freeCount).toBe(1);
    // Had the double release counted, two acquirers would now share (and overwrite) one buffer.
    expect(pool.acquire(4096).buffer).not.toBe(pool.acquire(4096).buffer);
  });

  it("keeps at most maxFree buffers per size", () => {
    const pool = new SharedBufferPool({ maxFree: 2 });
    const lent = [pool.acquire(4096), pool.acquire(4096), pool.acquire(4096)];
    for (const buffer of lent) pool.release(buffer);
    expect(pool.freeCount).toBe(2);
  });
});
