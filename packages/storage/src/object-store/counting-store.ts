/**
 * Counts what reaches the store below it, for metrics: requests, bytes and errors per operation. It sits
 * under the retry layer, so every attempt counts (each is a request the provider bills and may fail);
 * the retry layer's onRetry counts the retries. Plain fields, bumped in place: no allocation per call.
 */
import { isTransientError } from "./retrying-store";
import type { ByteRange, GetOptions, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions } from "./object-store";

export const STORE_OPERATIONS = ["put", "get", "head", "delete", "list"] as const;
export type StoreOperation = (typeof STORE_OPERATIONS)[number];

/** Errors by class: transient ones a retry may heal (5xx, throttling, resets, stalls), permanent ones not. */
export const STORE_ERROR_CLASSES = ["transient", "permanent"] as const;
export type StoreErrorClass = (typeof STORE_ERROR_CLASSES)[number];

export interface OperationCounters {
  requests: number;
  /** Body bytes sent (put) or received (get); keys deleted (delete); 0 otherwise. */
  bytes: number;
  errors: Record<StoreErrorClass, number>;
}

export type StoreCounters = Record<StoreOperation, OperationCounters>;

export function newStoreCounters(): StoreCounters {
  const one = (): OperationCounters => ({ requests: 0, bytes: 0, errors: { transient: 0, permanent: 0 } });
  return { put: one(), get: one(), head: one(), delete: one(), list: one() };
}

export class CountingObjectStore implements ObjectStore {
  readonly counters: StoreCounters = newStoreCounters();

  constructor(readonly inner: ObjectStore) {}

  get signsPayload(): boolean | undefined {
    return this.inner.signsPayload;
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    const counters = this.counters.put;
    counters.requests++;
    try {
      await this.inner.put(key, body, options);
    } catch (error) {
      throw this.#failed(counters, error);
    }
    counters.bytes += body.length;
  }

  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer | undefined> {
    const counters = this.counters.get;
    counters.requests++;
    try {
      const body = await this.inner.get(key, range, options);
      if (body !== undefined) counters.bytes += body.length;
      return body;
    } catch (error) {
      throw this.#failed(counters, error);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const counters = this.counters.head;
    counters.requests++;
    try {
      return await this.inner.head(key);
    } catch (error) {
      throw this.#failed(counters, error);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    const counters = this.counters.delete;
    counters.requests++;
    try {
      await this.inner.deleteMany(keys);
    } catch (error) {
      throw this.#failed(counters, error);
    }
    counters.bytes += keys.length;
  }

  async list(options: ListOptions): Promise<ListPage> {
    const counters = this.counters.list;
    counters.requests++;
    try {
      return await this.inner.list(options);
    } catch (error) {
      throw this.#failed(counters, error);
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  #failed(counters: OperationCounters, error: unknown): unknown {
    counters.errors[isTransientError(error) ? "transient" : "permanent"]++;
    return error;
  }
}
