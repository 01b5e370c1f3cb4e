/**
 * Retries transient failures of the store below it (network errors, HTTP 5xx/429/408, S3 SlowDown,
 * stalled attempts) with full-jitter exponential backoff, as nbdkit's retry filter does; then
 * StorageError("EIO") keeping the FIRST error as `cause` (later ones are usually the same outage).
 * Permanent failures are thrown at once, unchanged. Every operation is safe to repeat (whole
 * immutable puts, idempotent deletes), and a stalled attempt is abandoned, not cancelled.
 */
import { StorageError, isStorageError } from "../errors";
import { sleepOn, systemClock, type Clock } from "../util/clock";
import type { ByteRange, GetOptions, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions } from "./object-store";

export interface RetryingObjectStoreOptions {
  /** Tries per operation, the first included (default 8). */
  attempts?: number;
  /** First backoff ceiling (default 100 ms); doubles per retry. */
  baseDelayMs?: number;
  /** Backoff ceiling (default 5 s). */
  maxDelayMs?: number;
  /** Total time an operation may take, retries included (default 60 s). */
  operationTimeoutMs?: number;
  /** Time one attempt may take before it counts as stalled (default: operationTimeoutMs / 3, at most 20 s). */
  attemptTimeoutMs?: number;
  /** Source of jitter in [0, 1) (default Math.random; tests pass a seeded one). */
  random?: () => number;
  /** Told about each retry (for logs and metrics); never given bodies. */
  onRetry?: (event: RetryEvent) => void;
  /** Times backoff, attempt stalls and the operation's deadline (default: the system clock). */
  clock?: Clock;
}

export interface RetryEvent {
  operation: string;
  attempt: number;
  delayMs: number;
  error: unknown;
}

const TRANSIENT_NAMES = new Set([
  "SlowDown",
  "ServiceUnavailable",
  "InternalError",
  "RequestTimeout",
  "RequestTimeoutException",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "TimeoutError",
  "NetworkingError",
]);

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "EBUSY",
  "EAGAIN",
  "EMFILE",
  "ENFILE",
]);

/** StorageError codes that no retry can change. */
const PERMANENT_STORAGE_CODES = new Set(["EINVAL", "ENOSPC", "ENOTSUP", "EPERM", "EOVERFLOW", "ESHUTDOWN", "ENOTFOUND"]);

/**
 * Whether retrying `error` may help. Looks through StorageError causes to the SDK or node error.
 * A StorageError("EIO") with nothing recognisable inside counts as transient (EIO means the
 * store could not be reached); any other unknown error (a bug) as permanent.
 */
export function isTransientError(error: unknown): boolean {
  if (isStorageError(error) && PERMANENT_STORAGE_CODES.has(error.code)) return false;
  let sawStorageEio = false;
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 6; depth++) {
    const verdict = classify(current);
    if (verdict !== undefined) return verdict;
    if (isStorageError(current) && current.code === "EIO") sawStorageEio = true;
    current = (current as { cause?: unknown }).cause;
  }
  return sawStorageEio;
}

function classify(error: unknown): boolean | undefined {
  if (typeof error !== "object") return undefined;
  const { name, code, $metadata, $retryable } = error as {
    name?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  if (typeof name === "string" && TRANSIENT_NAMES.has(name)) return true;
  if (typeof code === "string" && TRANSIENT_CODES.has(code)) return true;
  const status = $metadata?.httpStatusCode;
  if (typeof status === "number") return status >= 500 || status === 429 || status === 408;
  if ($retryable) return true;
  if (isStorageError(error)) return undefined;
  // A node system error we do not list (EACCES, EROFS, ...) will not heal by itself.
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return false;
  return undefined;
}

export class RetryingObjectStore implements ObjectStore {
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly operationTimeoutMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly random: () => number;
  private readonly onRetry: ((event: RetryEvent) => void) | undefined;
  private readonly clock: Clock;
  private closed = false;

  get signsPayload(): boolean | undefined {
    return this.inner.signsPayload;
  }

  constructor(
    readonly inner: ObjectStore,
    options: RetryingObjectStoreOptions = {},
  ) {
    this.attempts = positive(options.attempts ?? 8, "attempts");
    this.baseDelayMs = positive(options.baseDelayMs ?? 100, "baseDelayMs");
    this.maxDelayMs = positive(options.maxDelayMs ?? 5_000, "maxDelayMs");
    this.operationTimeoutMs = positive(options.operationTimeoutMs ?? 60_000, "operationTimeoutMs");
    this.attemptTimeoutMs = positive(options.attemptTimeoutMs ?? Math.min(20_000, this.operationTimeoutMs / 3), "attemptTimeoutMs");
    this.random = options.random ?? Math.random;
    this.onRetry = options.onRetry;
    this.clock = options.clock ?? systemClock;
  }

  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    const onBodyReleased = options?.onBodyReleased;
    if (onBodyReleased === undefined) return this.retry(`put ${key}`, () => this.inner.put(key, body, options));
    // An attempt abandoned as stalled may still be sending `body`: release it only after every attempt settled.
    const attemptOptions = { ...options, onBodyReleased: undefined };
    let attemptsRunning = 0;
    let settled = false;
    const maybeReleased = () => {
      if (settled && attemptsRunning === 0) onBodyReleased();
    };
    const attemptDone = () => {
      attemptsRunning--;
      maybeReleased();
    };
    return this.retry(`put ${key}`, () => {
      attemptsRunning++;
      const attempt = this.inner.put(key, body, attemptOptions);
      attempt.then(attemptDone, attemptDone);
      return attempt;
    }).finally(() => {
      settled = true;
      maybeReleased();
    });
  }

  get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer | undefined> {
    // Each attempt allocates its own buffer: an abandoned one may still be receiving into it.
    return this.retry(`get ${key}`, () => this.inner.get(key, range, options));
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return this.retry(`head ${key}`, () => this.inner.head(key));
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.retry(`delete ${keys.length} keys`, () => this.inner.deleteMany(keys));
  }

  list(options: ListOptions): Promise<ListPage> {
    return this.retry(`list ${options.prefix}`, () => this.inner.list(options));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.inner.close();
  }

  private async retry<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const clock = this.clock;
    const deadline = clock.now() + this.operationTimeoutMs;
    let firstError: unknown;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new StorageError("ESHUTDOWN", `${operation}: the store is closed`, { cause: firstError });
      const remaining = deadline - clock.now();
      try {
        return await withTimeout(clock, run, Math.min(this.attemptTimeoutMs, remaining), operation);
      } catch (error) {
        if (!isTransientError(error)) throw error;
        firstError ??= error;
        const delayMs = this.backoff(attempt);
        if (attempt >= this.attempts || clock.now() + delayMs >= deadline) {
          const why = attempt >= this.attempts ? `${attempt} attempts` : `${this.operationTimeoutMs} ms`;
          throw new StorageError("EIO", `${operation} failed after ${why}: ${describe(firstError)}`, { cause: firstError });
        }
        this.onRetry?.({ operation, attempt, delayMs, error });
        await sleepOn(clock, delayMs);
      }
    }
  }

  /** Full jitter: uniform in [0, min(max, base * 2^(attempt-1))]. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    return Math.floor(this.random() * ceiling);
  }
}

/**
 * Runs one attempt; a stall past `timeoutMs` rejects with a transient EIO. ObjectStore has no
 * AbortSignal, so the attempt is abandoned by a race and left to settle (the store's own timeout ends it).
 */
function withTimeout<T>(clock: Clock, run: () => Promise<T>, timeoutMs: number, operation: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimer(
      // EIO with no cause: transient by isTransientError's rule.
      () => reject(new StorageError("EIO", `${operation}: no answer within ${Math.round(timeoutMs)} ms`)),
      Math.max(0, timeoutMs),
    );
    run().then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (error: unknown) => {
        timer.cancel();
        reject(error);
      },
    );
  });
}

function positive(value: number, what: string): number {
  if (!(value > 0)) throw new StorageError("EINVAL", `${what} must be positive, got ${value}`);
  return value;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
