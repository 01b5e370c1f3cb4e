/**
 * Turning an API error into what the UI shows: a field name (so the message sits next to the input
 * that caused it) and a human sentence. Server messages are already user-safe (the server maps
 * errors in one place and never sends internals); anything unexpected becomes a generic sentence.
 */
import { TRPCClientError } from "@trpc/client";

export interface UserFacingError {
  /** The form field the error belongs to, when the server named one. */
  field?: string;
  message: string;
}

const GENERIC = "Something went wrong on our side. Try again in a moment.";

interface ErrorData {
  code?: string;
  field?: string;
  httpStatus?: number;
  zodError?: { fieldErrors?: Record<string, string[] | undefined> } | null;
}

function dataOf(error: unknown): ErrorData | undefined {
  if (error instanceof TRPCClientError) return (error.data ?? undefined) as ErrorData | undefined;
  return undefined;
}

/** The tRPC error code (UNAUTHORIZED, NOT_FOUND, ...) or undefined for network and other errors. */
export function errorCode(error: unknown): string | undefined {
  return dataOf(error)?.code;
}

export function toUserError(error: unknown): UserFacingError {
  if (!(error instanceof TRPCClientError)) {
    return { message: error instanceof Error && /fetch|network/i.test(error.message) ? "Cannot reach the server." : GENERIC };
  }
  const data = dataOf(error);
  if (data?.code === "INTERNAL_SERVER_ERROR") return { message: GENERIC };
  const zodFields = data?.zodError?.fieldErrors;
  if (zodFields) {
    for (const [field, messages] of Object.entries(zodFields)) {
      if (messages?.[0]) return { field, message: messages[0] };
    }
  }
  let message = typeof error.message === "string" && error.message.length < 300 ? error.message : GENERIC;
  // Validation messages arrive as "field: what is wrong"; next to the field the prefix is noise.
  if (data?.field && message.startsWith(`${data.field}: `)) message = message.slice(data.field.length + 2);
  message = message.charAt(0).toUpperCase() + message.slice(1);
  // A JSON blob as message means an unformatted validation error: never show it raw.
  if (message.trimStart().startsWith("[") || message.trimStart().startsWith("{")) return { field: data?.field, message: "Check the values you entered." };
  return { field: data?.field, message };
}

/** The message for `field` if the error belongs to it (for aria-invalid + the text under the input). */
export function fieldError(error: UserFacingError | null | undefined, ...fields: string[]): string | undefined {
  return error?.field !== undefined && fields.includes(error.field) ? error.message : undefined;
}

/** The message for errors that belong to no field of this form (shown at the top of the form). */
export function formError(error: UserFacingError | null | undefined, fields: readonly string[]): string | undefined {
  if (!error) return undefined;
  return error.field !== undefined && fields.includes(error.field) ? undefined : error.message;
}
