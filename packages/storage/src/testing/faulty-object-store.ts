import { StorageError } from "../errors";
import type { ByteRange, GetOptions, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions } from "../object-store/object-store";

export type StoreOperation = "put" | "get" | "head" | "deleteMany" | "list";

/**
 * Wraps a store to make chosen operations fail or hold, as a scripted backend does in nbdkit's
 * retry tests. `failNext("put", 2)` fails the next two puts; `fail("put")` fails every put until
 * `heal()`; `hold("put")` parks puts until the returned release is called (to act while an
 * upload is in flight). Counts every call so tests can assert the requests made.
 */
export class FaultyObjectStore implements ObjectStore {
  readonly calls: Record<StoreOperation, number> = { put: 0, get: 0, head: 0, deleteMany: 0, list: 0 };
  private readonly failures = new Map<StoreOperation, number>();
  private readonly gates = new Map<StoreOperation, Promise<void>>();
  private readonly held = new Map<StoreOperation, number>();

  constructor(readonly inner: ObjectStore) {}

  get signsPayload(): boolean | undefined {
    return this.inner.signsPayload;
  }

  /** Fails the next `times` calls of `operation` (default: until heal()). */
  fail(operation: StoreOperation, times = Number.POSITIVE_INFINITY): void {
    this.failures.set(operation, times);
  }

  failNext(operation: StoreOperation, times = 1): void {
    this.fail(operation, times);
  }

  heal(): void {
    this.failures.clear();
  }

  /** Calls of `operation` wait (before reaching the inner store) until release() is called. */
  hold(operation: StoreOperation): () => void {
    let release!: () => void;
    this.gates.set(operation, new Promise<void>((resolve) => (release = resolve)));
    return () => {
      this.gates.delete(operation);
      release();
    };
  }

  /** Calls of `operation` currently parked by hold(). */
  heldCount(operation: StoreOperation): number {
    return this.held.get(operation) ?? 0;
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    try {
      await this.enter("put", key);
    } catch (error) {
      options?.onBodyReleased?.(); // failed before anything read the body
      throw error;
    }
    return this.inner.put(key, body, options);
  }

  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer | undefined> {
    await this.enter("get", key);
    return this.inner.get(key, range, options);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    await this.enter("head", key);
    return this.inner.head(key);
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    await this.enter("deleteMany", `${keys.length} keys`);
    return this.inner.deleteMany(keys);
  }

  async list(options: ListOptions): Promise<ListPage> {
    await this.enter("list", options.prefix);
    return this.inner.list(options);
  }

  async close(): Promise<void> {
    await this.inner.close();
  }

  private async enter(operation: StoreOperation, what: string): Promise<void> {
    this.calls[operation] += 1;
    const gate = this.gates.get(operation);
    if (gate !== undefined) {
      this.held.set(operation, this.heldCount(operation) + 1);
      await gate;
      this.held.set(operation, this.heldCount(operation) - 1);
    }
    const remaining = this.failures.get(operation) ?? 0;
    if (remaining > 0) {
      this.failures.set(operation, remaining - 1);
      throw new StorageError("EIO", `injected ${operation} failure (${what})`);
    }
  }
}
