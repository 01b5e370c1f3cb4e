import { describe, expect, it } from "vitest";
import { PayloadBufferPool } from "./payload-buffers";

const MiB = 1024 * 1024;

describe("PayloadBufferPool", () => {
  it("hands a released buffer out again for the same size, and never the same one twice at once", () => {
    const pool = new PayloadBufferPool();
    const first = pool.acquire(MiB);
    const second = pool.acquire(MiB);
    expect(second).not.toBe(first);
    pool.release(first);
    expect(pool.acquire(MiB)).toBe(first);
    expect(pool.acquire(MiB)).not.toBe(first);
    expect(pool.acquire(256 * 1024)).toHaveLength(256 * 1024);
  });

  it("keeps at most maxFreeBytes and leaves small buffers to Node's own pool", () => {
    const pool = new PayloadBufferPool(2 * MiB);
    const buffers = [pool.acquire(MiB), pool.acquire(MiB), pool.acquire(MiB)];
    for (const buffer of buffers) pool.release(buffer);
    expect(pool.acquire(MiB)).toBe(buffers[1]);
    expect(pool.acquire(MiB)).toBe(buffers[0]);
    expect(buffers).not.toContain(pool.acquire(MiB)); // the third was over the cap
    const small = pool.acquire(4096);
    pool.release(small);
    expect(pool.acquire(4096)).not.toBe(small);
  });
});
