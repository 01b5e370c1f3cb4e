import { describe, expect, it } from "vitest";
import { copyBytes } from "./copy-bytes";

const pattern = (length: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 7 + 3) & 0xff));

describe("copyBytes", () => {
  it("copies between shared and plain memory at any alignment, exactly the range asked", () => {
    const { Memory } = (
      globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer } } }
    ).WebAssembly;
    const shared = Buffer.from(new Memory({ initial: 1, maximum: 1, shared: true }).buffer);
    pattern(shared.length).copy(shared);
    for (const targetOffset of [0, 1, 17, 28]) {
      for (const sourceStart of [0, 3, 4096]) {
        const target = Buffer.alloc(9000, 0xee);
        expect(copyBytes(shared, target, targetOffset, sourceStart, sourceStart + 5000)).toBe(5000);
        expect(target.subarray(targetOffset, targetOffset + 5000).equals(shared.subarray(sourceStart, sourceStart + 5000))).toBe(true);
        expect(target[targetOffset - 1] ?? 0xee).toBe(0xee);
        expect(target[targetOffset + 5000]).toBe(0xee);
      }
    }
    const back = Buffer.from(new SharedArrayBuffer(100));
    expect(copyBytes(pattern(64), back, 5)).toBe(64);
    expect(back.subarray(5, 69).equals(pattern(64))).toBe(true);
    expect(back[4]).toBe(0);
    expect(back[69]).toBe(0);
  });

  it("stops at the end of the target, like Buffer#copy, and copies nothing for an empty range", () => {
    const target = Buffer.alloc(10);
    expect(copyBytes(pattern(32), target, 6)).toBe(4);
    expect(target.subarray(6).equals(pattern(4))).toBe(true);
    expect(copyBytes(pattern(32), target, 0, 5, 5)).toBe(0);
    expect(copyBytes(pattern(32), target, 10)).toBe(0);
  });
});
