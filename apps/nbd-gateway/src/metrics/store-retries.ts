/**
 * The store retries /metrics reports, counted from the start: apart from gateway-metrics.ts, which
 * loads prom-client only when /metrics is on.
 */
import { STORE_OPERATIONS, type StoreOperation } from "@stratus/storage";

/** Retries the retry layer made, per operation (start.ts counts them from its onRetry). */
export type StoreRetries = Record<StoreOperation, number>;

export function newStoreRetries(): StoreRetries {
  return { put: 0, get: 0, head: 0, delete: 0, list: 0 };
}

/** The operation of a RetryEvent ("put <key>", "delete 3 keys", …). */
export function retriedOperation(description: string): StoreOperation | undefined {
  const word = description.split(" ", 1)[0];
  return (STORE_OPERATIONS as readonly string[]).includes(word ?? "") ? (word as StoreOperation) : undefined;
}
