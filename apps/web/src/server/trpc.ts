/**
 * tRPC's one initialisation: the context every procedure sees, the auth middleware, the CSRF check and
 * the one place errors are mapped (ServiceError -> tRPC code, anything else -> a generic INTERNAL error
 * that is logged, never shown). Routers only validate input with zod and call a domain verb.
 */
import { initTRPC, TRPCError } from "@trpc/server";
import { isServiceError, type Actor, type RequestMeta, type Runtime, type ServiceContext, type ServiceErrorCode } from "@stratus/control";
import superjson from "superjson";
import { ZodError } from "zod";

export interface Context {
  runtime: Runtime;
  /** The signed-in user or the API token's owner; null for anonymous callers. */
  actor: Actor | null;
  /** A bearer token was presented but refused (revoked, expired, unknown): never fall back to a cookie. */
  tokenRefused: boolean;
  /** The request passed the CSRF check (bearer requests always do: they carry no cookies). */
  csrfOk: boolean;
  requestMeta: RequestMeta;
}

const TRPC_CODE: Record<ServiceErrorCode, TRPCError["code"]> = {
  BAD_REQUEST: "BAD_REQUEST",
  UNAUTHORIZED: "UNAUTHORIZED",
  FORBIDDEN: "FORBIDDEN",
  NOT_FOUND: "NOT_FOUND",
  CONFLICT: "CONFLICT",
  TOO_MANY_REQUESTS: "TOO_MANY_REQUESTS",
};

/** The one mapping from what a procedure threw to what the caller sees. */
export function toTrpcError(error: unknown, runtime: Runtime | undefined, path: string | undefined): TRPCError {
  if (error instanceof TRPCError) {
    if (error.code === "INTERNAL_SERVER_ERROR" && error.cause !== undefined) return toTrpcError(error.cause, runtime, path);
    if (error.code === "BAD_REQUEST" && error.cause instanceof ZodError) return toTrpcError(error.cause, runtime, path);
    return error;
  }
  if (isServiceError(error)) return new TRPCError({ code: TRPC_CODE[error.code], message: error.message, cause: error });
  if (error instanceof ZodError) {
    const issue = error.issues[0];
    const field = issue?.path.join(".");
    const cause = Object.assign(new Error(issue?.message ?? "invalid input"), { name: "ServiceError", code: "BAD_REQUEST", field });
    return new TRPCError({ code: "BAD_REQUEST", message: field ? `${field}: ${issue?.message}` : (issue?.message ?? "invalid input"), cause });
  }
  runtime?.logger.error({ err: error, path }, "tRPC procedure failed");
  return new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "internal error; see the server log" });
}

const t = initTRPC.context<Context>().create({
  transformer: superjson,
  // Never send stacks, even in development builds.
  isDev: false,
  errorFormatter({ shape, error }) {
    const cause = error.cause as { field?: unknown; retryAfterSeconds?: unknown } | undefined;
    const field = typeof cause?.field === "string" ? cause.field : undefined;
    const retryAfterSeconds = typeof cause?.retryAfterSeconds === "number" ? cause.retryAfterSeconds : undefined;
    const message = error.code === "INTERNAL_SERVER_ERROR" ? "internal error; see the server log" : shape.message;
    return { ...shape, message, data: { code: shape.data.code, httpStatus: shape.data.httpStatus, path: shape.data.path, field, retryAfterSeconds } };
  },
});

/** Maps errors thrown below it; every procedure starts here. */
const mapped = t.procedure.use(async ({ ctx, next, path }) => {
  const result = await next();
  if (!result.ok) throw toTrpcError(result.error, ctx.runtime, path);
  return result;
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/** Anonymous callers welcome (sign up). Mutations still pass the CSRF check. */
export const publicProcedure = mapped.use(({ ctx, type, next }) => {
  if (type === "mutation" && !ctx.csrfOk)
    throw new TRPCError({ code: "FORBIDDEN", message: "cross-site request refused (missing x-stratus-csrf or same-origin Origin)" });
  return next();
});

/** A signed-in user or a valid API token; the verb context is built here. */
export const authedProcedure = mapped.use(({ ctx, type, next }) => {
  if (ctx.tokenRefused) throw new TRPCError({ code: "UNAUTHORIZED", message: "invalid, expired or revoked API token" });
  if (!ctx.actor) throw new TRPCError({ code: "UNAUTHORIZED", message: "sign in first" });
  if (type === "mutation" && !ctx.csrfOk)
    throw new TRPCError({ code: "FORBIDDEN", message: "cross-site request refused (missing x-stratus-csrf or same-origin Origin)" });
  const service: ServiceContext = { runtime: ctx.runtime, actor: ctx.actor, requestMeta: ctx.requestMeta };
  return next({ ctx: { ...ctx, actor: ctx.actor, service } });
});
