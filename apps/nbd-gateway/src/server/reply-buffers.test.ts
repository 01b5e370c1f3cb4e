import { describe, expect, it } from "vitest";
import { ReplyBufferPool } from "./reply-buffers";

const READ_4K_REPLY = 16 + 4096;

describe("ReplyBufferPool", () => {
  it("reuses a slab once it is full and every slice came back", () => {
    const pool = new ReplyBufferPool();
    const first = Array.from({ length: 63 }, () => pool.alloc(READ_4K_REPLY)); // 63 fit in 256 KiB
    const slab = first[0]!.buffer;
    expect(first.every((b) => b.buffer === slab && b.length === READ_4K_REPLY)).toBe(true);
    const second = pool.alloc(READ_4K_REPLY); // slab full, slices still out: another slab
    expect(second.buffer).not.toBe(slab);
    for (const b of first) pool.release(b);
    const filler = Array.from({ length: 62 }, () => pool.alloc(READ_4K_REPLY));
    const next = pool.alloc(READ_4K_REPLY); // the second slab is full too: the first, all back, again
    expect(next.buffer).toBe(slab);
    expect(filler.every((b) => b.buffer === second.buffer)).toBe(true);
  });

  it("never hands out a slice that is still out", () => {
    const pool = new ReplyBufferPool();
    const out = new Set<Buffer>();
    const ranges = new Map<ArrayBufferLike, Array<[number, number]>>();
    for (let i = 0; i < 2000; i++) {
      const b = pool.alloc(i % 3 === 0 ? 16 : READ_4K_REPLY);
      const list = ranges.get(b.buffer) ?? [];
      for (const [start, end] of list) expect(b.byteOffset >= end || b.byteOffset + b.length <= start).toBe(true);
      list.push([b.byteOffset, b.byteOffset + b.length]);
      ranges.set(b.buffer, list);
      out.add(b);
      if (i % 5 === 4) {
        // release the two oldest
        for (const old of [...out].slice(0, 2)) {
          out.delete(old);
          pool.release(old);
          const kept = ranges.get(old.buffer)!.filter(([s]) => s !== old.byteOffset);
          ranges.set(old.buffer, kept);
        }
      }
    }
  });

  it("reuses large replies by size and ignores buffers it did not hand out", () => {
    const pool = new ReplyBufferPool();
    const big = pool.alloc(16 + 1024 * 1024);
    pool.release(big);
    expect(pool.alloc(16 + 1024 * 1024)).toBe(big);
    pool.release(Buffer.alloc(100)); // not from a slab: nothing happens
    const a = pool.alloc(100);
    const b = pool.alloc(100);
    expect(a.buffer).toBe(b.buffer);
    expect(a.byteOffset + 104).toBe(b.byteOffset);
  });
});
