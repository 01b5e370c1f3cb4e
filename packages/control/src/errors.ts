/**
 * The one error type domain verbs throw. Its code says what kind of failure it is; each transport
 * (tRPC, REST) maps codes to its status in one function. Messages are written for users; anything
 * that is not a ServiceError (a bug, a database failure) is logged by the transport and shown as a
 * generic internal error, never with its message or stack.
 */
export type ServiceErrorCode = "BAD_REQUEST" | "UNAUTHORIZED" | "FORBIDDEN" | "NOT_FOUND" | "CONFLICT" | "TOO_MANY_REQUESTS";

export class ServiceError extends Error {
  readonly code: ServiceErrorCode;
  /** The input field the error is about, so a form can show it next to that field. */
  readonly field: string | undefined;
  /** For TOO_MANY_REQUESTS: seconds until the caller may try again. */
  readonly retryAfterSeconds: number | undefined;
  constructor(code: ServiceErrorCode, message: string, options: { field?: string; cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(message, { cause: options.cause });
    this.name = "ServiceError";
    this.code = code;
    this.field = options.field;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** Duck-typed on purpose: the gateway and the Next bundle each load their own copy of this module. */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && error.name === "ServiceError" && typeof (error as ServiceError).code === "string";
}

export const HTTP_STATUS: Record<ServiceErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_MANY_REQUESTS: 429,
};
