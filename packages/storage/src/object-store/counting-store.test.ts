import { describe, expect, it } from "vitest";
import { StorageError } from "../errors";
import { FaultyObjectStore } from "../testing/faulty-object-store";
import { CountingObjectStore } from "./counting-store";
import { MemoryObjectStore } from "./memory-store";
import { RetryingObjectStore } from "./retrying-store";

describe("CountingObjectStore", () => {
  it("counts requests and bytes per operation, and each failed attempt by class under the retry layer", async () => {
    const faulty = new FaultyObjectStore(new MemoryObjectStore());
    const counting = new CountingObjectStore(faulty);
    // Backoff drawn as 0 ms: the retries run at once.
    const retrying = new RetryingObjectStore(counting, { random: () => 0 });

    faulty.failNext("put", 2); // EIO with nothing inside: transient, retried
    await retrying.put("a", Buffer.alloc(100));
    expect(counting.counters.put).toEqual({ requests: 3, bytes: 100, errors: { transient: 2, permanent: 0 } });

    expect((await retrying.get("a"))?.length).toBe(100);
    expect(await retrying.get("missing")).toBeUndefined();
    expect(counting.counters.get).toMatchObject({ requests: 2, bytes: 100 });

    await retrying.deleteMany(["a", "b"]);
    expect(counting.counters.delete).toMatchObject({ requests: 1, bytes: 2 });

    // A permanent failure is thrown at once, counted once.
    const inner = new MemoryObjectStore();
    inner.head = () => Promise.reject(new StorageError("EINVAL", "bad key"));
    const direct = new CountingObjectStore(inner);
    await expect(new RetryingObjectStore(direct).head("x")).rejects.toThrow("bad key");
    expect(direct.counters.head).toEqual({ requests: 1, bytes: 0, errors: { transient: 0, permanent: 1 } });
  });
});
