import { createHash, randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { StorageError } from "../errors";
import { CodecPool } from "./codec-pool";
import { SealedCodec } from "./sealed-codec";
import { SharedBufferPool } from "./shared-buffers";

const MiB = 1024 * 1024;
const context = (index: number) => ({ volumeId: "vol_pool", index, generation: 65_537 });

describe("CodecPool", () => {
  const pool = new CodecPool({ size: 2 });
  const sealed = new SealedCodec({ dataKey: randomBytes(32) });
  const pooled = sealed.pooled(pool);
  afterAll(() => pool.close());

  it("seals and opens the same objects as the calling thread, many at once, with the body's SHA-256", async () => {
    const chunks = Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? Buffer.alloc(MiB, i) : randomBytes(MiB)));
    const uploads = await Promise.all(chunks.map((plain, i) => pooled.encodeForUpload(plain, context(i))));
    uploads.forEach(({ body, sha256 }, i) => {
      expect(sha256).toBe(createHash("sha256").update(body).digest("hex"));
      expect(sealed.decode(body, context(i)).equals(chunks[i]!)).toBe(true); // pool -> this thread
    });
    expect(uploads[0]!.body.length).toBeLessThan(MiB / 100); // compressed in the worker
    const here = chunks.map((plain, i) => sealed.encode(plain, context(i)));
    const opened = await Promise.all(here.map((body, i) => pooled.decode(body, context(i)))); // this thread -> pool
    opened.forEach((plain, i) => expect(plain.equals(chunks[i]!)).toBe(true));
  });

  it("hashes nothing for a store that does not sign bodies", async () => {
    const plain = randomBytes(MiB);
    const upload = await pooled.encodeForUpload(plain, context(8), { sha256: false });
    expect(upload.sha256).toBeUndefined();
    expect(sealed.decode(upload.body, context(8)).equals(plain)).toBe(true);
    upload.release?.();
  });

  it("reads shared memory in place and leaves it as it was", async () => {
    const buffers = new SharedBufferPool();
    const plain = buffers.acquire(MiB);
    randomBytes(MiB).copy(plain);
    const before = Buffer.from(plain);
    const { body } = await pooled.encodeForUpload(plain, context(3));
    expect(plain.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(plain.equals(before)).toBe(true); // not detached, not changed
    expect(sealed.decode(body, context(3)).equals(before)).toBe(true);
  });

  it("writes sealed bodies into shared memory that is reused once released", async () => {
    const plain = randomBytes(MiB);
    const first = await pooled.encodeForUpload(plain, context(4));
    expect(first.body.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(sealed.decode(Buffer.from(first.body), context(4)).equals(plain)).toBe(true);
    const memory = first.body.buffer;
    const held = await pooled.encodeForUpload(plain, context(5));
    expect(held.body.buffer).not.toBe(memory); // the first is not released yet: never shared
    first.release!();
    first.release!(); // a second release changes nothing
    const second = await pooled.encodeForUpload(randomBytes(MiB), context(6));
    expect(second.body.buffer).toBe(memory);
    const third = await pooled.encodeForUpload(randomBytes(MiB), context(7));
    expect(third.body.buffer).not.toBe(memory);
    expect(sealed.decode(Buffer.from(held.body), context(5)).equals(plain)).toBe(true);
  });

  it("opens into shared memory given as output, and into its own buffer when that does not fit", async () => {
    const plain = randomBytes(MiB);
    const body = sealed.encode(plain, context(8));
    const output = new SharedBufferPool().acquire(MiB);
    const opened = await pooled.decode(body, context(8), output);
    expect(opened.buffer).toBe(output.buffer);
    expect(opened.equals(plain)).toBe(true);
    const small = new SharedBufferPool().acquire(MiB / 2);
    const fallback = await pooled.decode(body, context(8), small);
    expect(fallback.buffer).not.toBe(small.buffer);
    expect(fallback.equals(plain)).toBe(true);
    await expect(
      pooled.decode(Buffer.concat([body.subarray(0, 40), Buffer.from([body[40]! ^ 1]), body.subarray(41)]), context(8), output),
    ).rejects.toMatchObject({ code: "EIO" });
  });

  it("reports a tampered or misplaced object as EIO, like the calling thread", async () => {
    const body = sealed.encode(randomBytes(4096), context(1));
    const flipped = Buffer.from(body);
    flipped[body.length - 20]! ^= 1;
    await expect(pooled.decode(flipped, context(1))).rejects.toMatchObject({ code: "EIO" });
    await expect(pooled.decode(body, context(2))).rejects.toMatchObject({ code: "EIO", message: expect.stringContaining("failed authentication") });
  });

  it("fails what a dying worker had in flight with EIO, replaces it, and goes on", async () => {
    const lone = new CodecPool({ size: 1 });
    const codec = sealed.pooled(lone);
    try {
      const before = Array.from({ length: 2 }, (_, i) => codec.encode(randomBytes(MiB), context(i)));
      const replaced = lone.crashWorkerForTest();
      const after = Array.from({ length: 2 }, (_, i) => codec.encode(randomBytes(MiB), context(i + 2)));
      // Posted before the exit message: answered. Posted to the dying worker after it: EIO. None hangs.
      expect((await Promise.allSettled(before)).map((r) => r.status)).toEqual(["fulfilled", "fulfilled"]);
      for (const result of await Promise.allSettled(after)) {
        expect(result.status).toBe("rejected");
        expect((result as PromiseRejectedResult).reason).toMatchObject({ code: "EIO", message: expect.stringContaining("codec worker died") });
      }
      await replaced;
      const plain = randomBytes(MiB);
      const body = await codec.encode(plain, context(9)); // the new worker got the key again
      expect(sealed.decode(body, context(9)).equals(plain)).toBe(true);
    } finally {
      await lone.close();
    }
  });

  it("refuses work after close and after a key was dropped", async () => {
    const short = new CodecPool({ size: 1 });
    const codec = sealed.pooled(short);
    codec.release();
    await expect(codec.encode(Buffer.alloc(16), context(0))).rejects.toBeInstanceOf(StorageError);
    await short.close();
    await expect(sealed.pooled(pool).decode(Buffer.alloc(64), context(0))).rejects.toMatchObject({ code: "EIO" });
    expect(() => sealed.pooled(short)).toThrow(/closed/);
  });
});
