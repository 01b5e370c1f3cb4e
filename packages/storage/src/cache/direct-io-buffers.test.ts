import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DIRECT_IO_ALIGNMENT, DirectIoBufferPool, isPageAligned, pageAlignedBuffer } from "./direct-io-buffers";

const MiB = 1024 * 1024;
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("DirectIoBufferPool", () => {
  it("hands out page-aligned shared buffers of the asked length that an O_DIRECT write takes", () => {
    const pool = new DirectIoBufferPool();
    const buffer = pool.acquire(MiB);
    expect(buffer.length).toBe(MiB);
    expect(buffer.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(isPageAligned(buffer)).toBe(true);
    buffer.fill(0x5c);

    // The kernel refuses (EINVAL) an O_DIRECT write from memory that is not aligned: this is the proof.
    const dir = mkdtempSync(path.join(os.tmpdir(), "stratus-direct-"));
    dirs.push(dir);
    const file = path.join(dir, "chunk");
    const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_DIRECT);
    try {
      expect(writeSync(fd, buffer, 0, buffer.length, 0)).toBe(MiB);
      const unaligned = Buffer.from(new SharedArrayBuffer(MiB + DIRECT_IO_ALIGNMENT), 16, MiB);
      expect(() => writeSync(fd, unaligned, 0, MiB, 0)).toThrow(/EINVAL/);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file).equals(Buffer.alloc(MiB, 0x5c))).toBe(true);
  });

  it("gives each lent buffer its own slot and reuses a released one", () => {
    const pool = new DirectIoBufferPool();
    const first = pool.acquire(MiB);
    const second = pool.acquire(MiB);
    expect(second.buffer).toBe(first.buffer); // one slab...
    expect(Math.abs(second.byteOffset - first.byteOffset)).toBeGreaterThanOrEqual(MiB); // ...no overlap
    first.fill(1);
    second.fill(2);
    expect(first.every((byte) => byte === 1)).toBe(true);
    expect(pool.lentCount).toBe(2);

    pool.release(first);
    pool.release(first); // a second release must not put the slot on the free list twice
    expect(pool.lentCount).toBe(1);
    const third = pool.acquire(MiB - 4096); // a volume's shorter last chunk fits the same slot
    expect(third.byteOffset).toBe(first.byteOffset);
    const fourth = pool.acquire(MiB);
    expect(fourth.byteOffset).not.toBe(first.byteOffset);
    expect(fourth.byteOffset).not.toBe(second.byteOffset);
  });

  it("ignores buffers it did not lend, and says which buffers O_DIRECT cannot take", () => {
    const pool = new DirectIoBufferPool();
    pool.release(Buffer.alloc(4096));
    pool.release(Buffer.from(new SharedArrayBuffer(65_536)));
    pool.release(null);
    expect(pool.lentCount).toBe(0);
    expect(isPageAligned(Buffer.from(new SharedArrayBuffer(65_536)))).toBe(false);
    const odd = pool.acquire(MiB - 512); // aligned start, but not whole pages long
    expect(isPageAligned(odd)).toBe(false);
    expect(isPageAligned(odd.subarray(0, MiB - 4096))).toBe(true);
  });

  it("hands out plain buffers once every slot is lent, and slots again after a release", () => {
    const pool = new DirectIoBufferPool();
    const size = 32 * MiB; // 3 slots in a 96 MiB slab
    const lent = [pool.acquire(size), pool.acquire(size), pool.acquire(size)];
    expect(lent.every(isPageAligned)).toBe(true);
    const overflow = pool.acquire(size);
    expect(overflow.length).toBe(size);
    expect(isPageAligned(overflow)).toBe(false);
    pool.release(overflow); // not the pool's: ignored
    expect(pool.lentCount).toBe(3);
    pool.release(lent[1]);
    expect(isPageAligned(pool.acquire(size))).toBe(true);
  });

  it("makes bounce buffers (pageAlignedBuffer) that an O_DIRECT write takes", () => {
    // direct-pieces.ts relies on this too; a misaligned bounce buffer would turn O_DIRECT off quietly.
    const bounce = pageAlignedBuffer(256 * 1024).fill(0x3a);
    const dir = mkdtempSync(path.join(os.tmpdir(), "stratus-bounce-"));
    dirs.push(dir);
    const fd = openSync(path.join(dir, "chunk"), constants.O_RDWR | constants.O_CREAT | constants.O_DIRECT);
    try {
      expect(writeSync(fd, bounce, 0, bounce.length, 0)).toBe(bounce.length);
    } finally {
      closeSync(fd);
    }
  });
});
