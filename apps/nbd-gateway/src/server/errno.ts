/**
 * The one place internal errors become NBD error values. The real error is logged first; the
 * client only ever sees the narrower NBD code. Anything we do not recognise is NBD_EIO.
 */
import type { Logger } from "pino";
import { isStorageError } from "@stratus/storage";
import type { StorageErrorCode } from "@stratus/storage";
import { NBD_EINVAL, NBD_EIO, NBD_ENOSPC, NBD_ENOTSUP, NBD_EOVERFLOW, NBD_EPERM, NBD_ESHUTDOWN } from "../protocol/constants";

/**
 * "The server SHOULD return `NBD_ENOSPC` if it receives a write request including one or more
 * sectors beyond the size of the device. It also SHOULD map the `EDQUOT` and `EFBIG` errors to
 * `NBD_ENOSPC`." ... "The server SHOULD NOT return `NBD_ENOMEM` if at all possible."
 */
const NBD_ERRNO_BY_CODE: Record<StorageErrorCode, number> = {
  EIO: NBD_EIO,
  EINVAL: NBD_EINVAL,
  ENOSPC: NBD_ENOSPC,
  ENOTSUP: NBD_ENOTSUP,
  EPERM: NBD_EPERM,
  EOVERFLOW: NBD_EOVERFLOW,
  ESHUTDOWN: NBD_ESHUTDOWN,
  ENOTFOUND: NBD_EIO,
};

/** Node/POSIX error codes a lower layer may let through (fs, sockets). */
const NBD_ERRNO_BY_SYSTEM_CODE: Record<string, number> = {
  EDQUOT: NBD_ENOSPC,
  EFBIG: NBD_ENOSPC,
  ENOSPC: NBD_ENOSPC,
  EROFS: NBD_EPERM,
  EACCES: NBD_EPERM,
  EPERM: NBD_EPERM,
};

export interface ErrnoContext {
  command: string;
  offset: number;
  length: number;
}

export function toNbdErrno(error: unknown, logger: Logger, context: ErrnoContext): number {
  let errno = NBD_EIO;
  if (isStorageError(error)) {
    errno = NBD_ERRNO_BY_CODE[error.code] ?? NBD_EIO;
  } else if (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === "string") {
    errno = NBD_ERRNO_BY_SYSTEM_CODE[(error as NodeJS.ErrnoException).code!] ?? NBD_EIO;
  }
  // Expected refusals (ENOTSUP for FAST_ZERO, EPERM/ENOSPC/EINVAL from the device) are warnings;
  // EIO means something below us failed and deserves an error line.
  const level = errno === NBD_EIO || errno === NBD_ESHUTDOWN ? "error" : "warn";
  logger[level]({ err: error, ...context, nbdErrno: errno }, "nbd request failed");
  return errno;
}
