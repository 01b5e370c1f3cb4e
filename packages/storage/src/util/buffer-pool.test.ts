/** Debug mode of the engine's buffer pools: misuse that would silently corrupt data throws instead. */
import { describe, expect, it } from "vitest";
import { DirectIoBufferPool } from "../cache/direct-io-buffers";
import { SharedBufferPool } from "../codec/shared-buffers";
import { BufferPoolMisuse, POISON_BYTE, type BufferPool } from "./buffer-pool";

const pools: Array<[string, (debug: boolean) => BufferPool]> = [
  ["SharedBufferPool", (debug) => new SharedBufferPool({ debug })],
  ["DirectIoBufferPool", (debug) => new DirectIoBufferPool({ debug })],
];

describe.each(pools)("%s in debug mode", (_name, make) => {
  it("poisons a released buffer, so a reader that kept it sees garbage, not stale data", () => {
    const pool = make(true);
    const buffer = pool.acquire(64 * 1024);
    buffer.fill(7);
    pool.release(buffer);
    expect(buffer.every((byte) => byte === POISON_BYTE)).toBe(true);
  });

  it("throws on a second release of the same buffer, and ignores memory it never lent", () => {
    const pool = make(true);
    const buffer = pool.acquire(64 * 1024);
    pool.release(buffer);
    expect(() => pool.release(buffer)).toThrow(BufferPoolMisuse);
    pool.release(Buffer.alloc(4096)); // another pool's, or plain memory: not this pool's business
    pool.release(null);
  });

  it("throws when memory written after its release is lent again", () => {
    const pool = make(true);
    const buffer = pool.acquire(64 * 1024);
    pool.release(buffer);
    buffer[100] = 1; // a use after release
    expect(() => pool.acquire(64 * 1024)).toThrow(/written after it was released/);
  });

  it("lends released memory again when it was left alone", () => {
    const pool = make(true);
    const first = pool.acquire(64 * 1024);
    pool.release(first);
    const second = pool.acquire(64 * 1024);
    expect(second.buffer).toBe(first.buffer);
    pool.release(second);
  });
});

describe.each(pools)("%s outside debug mode", (_name, make) => {
  it("neither poisons nor throws (the gateway's default)", () => {
    const pool = make(false);
    const buffer = pool.acquire(64 * 1024);
    buffer.fill(7);
    pool.release(buffer);
    pool.release(buffer);
    expect(buffer[0]).toBe(7);
  });
});
