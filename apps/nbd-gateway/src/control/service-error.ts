/**
 * The one error type domain verbs throw. Its code says what kind of failure it is; each transport
 * (REST now, tRPC later) maps codes to its status in one function. Messages are written for users;
 * anything else (a bug, a database failure) is logged and shown as a generic internal error.
 */
export type ServiceErrorCode = "BAD_REQUEST" | "UNAUTHORIZED" | "FORBIDDEN" | "NOT_FOUND" | "CONFLICT";

export class ServiceError extends Error {
  readonly code: ServiceErrorCode;
  readonly field: string | undefined;
  constructor(code: ServiceErrorCode, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "ServiceError";
    this.code = code;
    this.field = options.field;
  }
}

export const HTTP_STATUS: Record<ServiceErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
};
