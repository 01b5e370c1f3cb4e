import { describe, expect, it } from "vitest";
import { StorageError } from "../errors";
import { FaultyObjectStore } from "../testing/faulty-object-store";
import { ManualClock } from "../testing/manual-clock";
import { seededRandom } from "../testing/seeded-random";
import { waitFor } from "../testing/wait-for";
import { MemoryObjectStore } from "./memory-store";
import type { ObjectStore } from "./object-store";
import { RetryingObjectStore, isTransientError, type RetryEvent } from "./retrying-store";

/** An error shaped like the AWS SDK's, wrapped as S3ObjectStore wraps it. */
function s3Error(name: string, status: number | undefined): StorageError {
  const sdk = Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  return new StorageError("EIO", `S3 put failed: ${name}`, { cause: sdk });
}

function nodeError(code: string): StorageError {
  const cause = Object.assign(new Error(`connect ${code}`), { code });
  return new StorageError("EIO", `S3 get failed: ${code}`, { cause });
}

/** A store whose every call first consults `decide`: throw to fail, return to pass through. */
function scripted(inner: ObjectStore, decide: (operation: string) => void): ObjectStore {
  const wrap =
    <A extends unknown[], R>(operation: string, call: (...args: A) => Promise<R>) =>
    async (...args: A) => {
      decide(operation);
      return call(...args);
    };
  return {
    put: wrap("put", inner.put.bind(inner)),
    get: wrap("get", inner.get.bind(inner)),
    head: wrap("head", inner.head.bind(inner)),
    deleteMany: wrap("deleteMany", inner.deleteMany.bind(inner)),
    list: wrap("list", inner.list.bind(inner)),
    close: () => inner.close(),
  };
}

const fast = { baseDelayMs: 1, maxDelayMs: 5, random: seededRandom(1) };

/** Moves `clock` on in 10 ms steps until `pending` settles; returns its outcome and the time it took. */
async function settleOnClock<T>(clock: ManualClock, pending: Promise<T>, limitMs = 10_000): Promise<{ outcome: T; elapsedMs: number }> {
  const start = clock.now();
  let settled = false;
  void pending.then(() => (settled = true));
  while (!settled && clock.now() - start < limitMs) await clock.advance(10);
  return { outcome: await pending, elapsedMs: clock.now() - start };
}

describe("isTransientError", () => {
  it.each([
    ["503 SlowDown", s3Error("SlowDown", 503), true],
    ["500 InternalError", s3Error("InternalError", 500), true],
    ["502 without a name we know", s3Error("UnknownError", 502), true],
    ["429", s3Error("TooManyRequests", 429), true],
    ["ServiceUnavailable without status", s3Error("ServiceUnavailable", undefined), true],
    ["SDK TimeoutError", s3Error("TimeoutError", undefined), true],
    ["ECONNRESET", nodeError("ECONNRESET"), true],
    ["ECONNREFUSED", nodeError("ECONNREFUSED"), true],
    ["ETIMEDOUT", nodeError("ETIMEDOUT"), true],
    ["EPIPE", nodeError("EPIPE"), true],
    ["bare ECONNRESET", Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), true],
    ["EIO with no cause (injected fault, timeout)", new StorageError("EIO", "injected"), true],
    ["403 AccessDenied", s3Error("AccessDenied", 403), false],
    ["404 NoSuchBucket", s3Error("NoSuchBucket", 404), false],
    ["400 InvalidArgument", s3Error("InvalidArgument", 400), false],
    ["EACCES from the directory store", new StorageError("EIO", "put failed: EACCES", { cause: Object.assign(new Error("x"), { code: "EACCES" }) }), false],
    ["StorageError EINVAL", new StorageError("EINVAL", "bad key"), false],
    ["StorageError ENOSPC", new StorageError("ENOSPC", "full"), false],
    ["a plain bug", new TypeError("undefined is not a function"), false],
  ])("%s -> %s", (_name, error, transient) => {
    expect(isTransientError(error)).toBe(transient);
  });
});

describe("RetryingObjectStore", () => {
  it("retries a failing operation until it succeeds, and reports each retry", async () => {
    const faulty = new FaultyObjectStore(new MemoryObjectStore());
    const events: RetryEvent[] = [];
    const store = new RetryingObjectStore(faulty, { ...fast, attempts: 5, onRetry: (event) => events.push(event) });
    faulty.failNext("put", 3);
    await store.put("a/b", Buffer.from("hello"));
    expect(faulty.calls.put).toBe(4);
    expect(events.map((event) => event.attempt)).toEqual([1, 2, 3]);
    faulty.failNext("get", 2);
    expect((await store.get("a/b"))?.toString()).toBe("hello");
    expect(faulty.calls.get).toBe(3);
  });

  it("gives up after `attempts` with EIO and the FIRST error as cause", async () => {
    let calls = 0;
    const errors = [s3Error("SlowDown", 503), nodeError("ECONNRESET"), s3Error("InternalError", 500)];
    const store = new RetryingObjectStore(
      scripted(new MemoryObjectStore(), () => {
        throw errors[calls++ % errors.length];
      }),
      { ...fast, attempts: 3 },
    );
    const error = await store.put("k", Buffer.from("x")).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe("EIO");
    expect((error as StorageError).message).toMatch(/put k failed after 3 attempts: S3 put failed: SlowDown/);
    expect((error as StorageError).cause).toBe(errors[0]);
    expect(calls).toBe(3);
  });

  it("loses nothing with 20% random failures over 500 operations", async () => {
    const random = seededRandom(20);
    const memory = new MemoryObjectStore();
    const failures = [s3Error("SlowDown", 503), nodeError("ECONNRESET"), nodeError("ETIMEDOUT"), s3Error("InternalError", 500)];
    let injected = 0;
    const store = new RetryingObjectStore(
      scripted(memory, () => {
        if (random() < 0.2) throw failures[injected++ % failures.length];
      }),
      { ...fast, attempts: 10 },
    );
    const expected = new Map<string, string>();
    for (let i = 0; i < 500; i++) {
      const key = `k/${String(i % 50).padStart(3, "0")}`;
      const op = i % 5;
      if (op <= 1) {
        await store.put(key, Buffer.from(`value ${i}`));
        expected.set(key, `value ${i}`);
      } else if (op === 2) {
        expect((await store.get(key))?.toString()).toBe(expected.get(key));
      } else if (op === 3) {
        expect((await store.list({ prefix: "k/" })).objects.length).toBe(expected.size);
      } else {
        expect((await store.head(key))?.size).toBe(expected.get(key)?.length);
      }
    }
    expect(injected).toBeGreaterThan(50);
    for (const [key, value] of expected) expect((await memory.get(key))?.toString()).toBe(value);
  });

  it("does not retry permanent errors and passes them through unchanged", async () => {
    for (const permanent of [s3Error("AccessDenied", 403), new StorageError("EINVAL", "bad key"), new TypeError("bug")]) {
      let calls = 0;
      const store = new RetryingObjectStore(
        scripted(new MemoryObjectStore(), () => {
          calls++;
          throw permanent;
        }),
        fast,
      );
      await expect(store.get("k")).rejects.toBe(permanent);
      expect(calls).toBe(1);
    }
  });

  it("treats a missing object as an answer", async () => {
    const faulty = new FaultyObjectStore(new MemoryObjectStore());
    const store = new RetryingObjectStore(faulty, fast);
    expect(await store.get("missing")).toBeUndefined();
    expect(await store.head("missing")).toBeUndefined();
    expect(faulty.calls.get + faulty.calls.head).toBe(2);
  });

  it("fails a stalled operation with EIO within the deadline, and recovers when the stall ends", async () => {
    const faulty = new FaultyObjectStore(new MemoryObjectStore());
    await faulty.put("k", Buffer.from("v"));
    const clock = new ManualClock();
    const store = new RetryingObjectStore(faulty, { ...fast, attemptTimeoutMs: 50, operationTimeoutMs: 400, clock });
    const release = faulty.hold("get");
    const { outcome: error, elapsedMs } = await settleOnClock(
      clock,
      store.get("k").catch((caught: unknown) => caught),
    );
    expect(elapsedMs).toBeLessThanOrEqual(400);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe("EIO");
    expect((error as StorageError).message).toMatch(/get k failed after (\d+ attempts|400 ms): get k: no answer within \d+ ms/);
    expect(faulty.calls.get).toBeGreaterThan(1); // each stalled attempt was abandoned and retried
    release();
    expect((await store.get("k"))?.toString()).toBe("v");
  }, 10_000);

  it("says a put's body is released only once every attempt, stalled ones included, settled", async () => {
    const faulty = new FaultyObjectStore(new MemoryObjectStore());
    const clock = new ManualClock();
    const store = new RetryingObjectStore(faulty, { ...fast, attemptTimeoutMs: 50, operationTimeoutMs: 300, clock });
    let released = 0;
    const unstall = faulty.hold("put");
    const { outcome: error } = await settleOnClock(
      clock,
      store.put("k", Buffer.from("v"), { onBodyReleased: () => released++ }).catch((caught: unknown) => caught),
    );
    expect(error).toMatchObject({ code: "EIO" });
    expect(faulty.calls.put).toBeGreaterThan(1);
    expect(released).toBe(0); // the abandoned attempts could still be sending the body
    unstall();
    await waitFor(() => released === 1, "the body's release");
    let once = 0;
    await store.put("k2", Buffer.from("w"), { onBodyReleased: () => once++ });
    expect(once).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(released).toBe(1);
  }, 10_000);

  it("stops retrying once closed", async () => {
    const faulty = new FaultyObjectStore(new MemoryObjectStore());
    const store = new RetryingObjectStore(faulty, { baseDelayMs: 20, maxDelayMs: 20, random: () => 1 });
    faulty.fail("put");
    const pending = store.put("k", Buffer.from("x")).catch((caught: unknown) => caught);
    await waitFor(() => faulty.calls.put >= 1, "the first attempt");
    await store.close();
    expect(await pending).toMatchObject({ code: "ESHUTDOWN" });
  });
});
