/**
 * Errors with stable codes. Each layer throws StorageError with the code closest to what went
 * wrong; the NBD gateway maps codes to NBD errno values in one place. `cause` keeps the original.
 */
export type StorageErrorCode =
  | "EIO" // the store or a layer failed; data may be fine but could not be reached or verified
  | "EINVAL" // a request the device cannot take (bad range, bad flag)
  | "ENOSPC" // past the end of the device, or out of space
  | "ENOTSUP" // e.g. FAST_ZERO that cannot be fast
  | "EPERM" // write to a read-only device
  | "EOVERFLOW" // a reply that would be too large
  | "ESHUTDOWN" // the device is closing
  | "ENOTFOUND"; // no such volume / object where one was required

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageError";
    this.code = code;
  }
}

export function isStorageError(error: unknown): error is StorageError {
  return error instanceof StorageError;
}

/** `error` as EIO naming `what` (an EIO StorageError passes as it is), keeping it as the cause. */
export function asEio(error: unknown, what: string): StorageError {
  if (isStorageError(error) && error.code === "EIO") return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError("EIO", `${what} failed: ${message}`, { cause: error });
}
