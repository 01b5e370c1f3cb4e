/**
 * The REST surface's one wrapper: authenticate (bearer token or session cookie), refuse cross-site cookie
 * writes, parse the JSON body, call the route's verb, and map errors in one place:
 * `{ error: { code, message, field? } }` with 400/401/403/404/409/429; anything unexpected is logged and
 * answered with a generic 500, never a stack trace or an internal message.
 */
import { HTTP_STATUS, isServiceError, ServiceError, type Runtime, type ServiceContext } from "@stratus/control";
import { contextFromRequest } from "../context";
import { BodyTooLarge, readCappedBody, tooLargeResponse } from "../request-body";

export interface RestCall {
  ctx: ServiceContext;
  req: Request;
  params: Record<string, string>;
  /** The JSON body (an empty body reads as {}). */
  body(): Promise<unknown>;
}

type RouteContext = { params: Promise<Record<string, string | string[]>> };

export function restRoute(fn: (call: RestCall) => Promise<Response | unknown>, options: { status?: number } = {}) {
  return async (req: Request, route?: RouteContext): Promise<Response> => {
    let runtime: Runtime | undefined;
    try {
      const context = await contextFromRequest(req);
      runtime = context.runtime;
      if (context.tokenRefused) throw new ServiceError("UNAUTHORIZED", "invalid, expired or revoked API token");
      if (!context.actor) throw new ServiceError("UNAUTHORIZED", "sign in or send Authorization: Bearer <API token>");
      if (req.method !== "GET" && req.method !== "HEAD" && !context.csrfOk) {
        throw new ServiceError("FORBIDDEN", "cross-site request refused (missing x-stratus-csrf or same-origin Origin)");
      }
      const raw = (route ? await route.params : undefined) ?? {};
      const params = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Array.isArray(v) ? v.join("/") : v]));
      const ctx: ServiceContext = { runtime: context.runtime, actor: context.actor, requestMeta: context.requestMeta };
      const result = await fn({ ctx, req, params, body: () => readJson(req) });
      if (result instanceof Response) return result;
      return json(options.status ?? 200, result);
    } catch (error) {
      return errorResponse(error, runtime, req);
    }
  };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "cache-control": "no-store", ...headers } });
}

async function readJson(req: Request): Promise<unknown> {
  const text = new TextDecoder().decode(await readCappedBody(req));
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ServiceError("BAD_REQUEST", "request body is not valid JSON");
  }
}

/** The one place REST errors become HTTP answers. */
export function errorResponse(error: unknown, runtime: Runtime | undefined, req: Request): Response {
  if (error instanceof BodyTooLarge) return tooLargeResponse(error);
  if (isServiceError(error)) {
    const headers: Record<string, string> = error.retryAfterSeconds ? { "retry-after": String(error.retryAfterSeconds) } : {};
    return json(HTTP_STATUS[error.code], { error: { code: error.code, message: error.message, field: error.field } }, headers);
  }
  // The path only (no query string): URLs carry no secrets here, but keep the log minimal anyway.
  runtime?.logger.error({ err: error, route: `${req.method} ${new URL(req.url).pathname}` }, "REST request failed");
  return json(500, { error: { code: "INTERNAL", message: "internal error; see the server log" } });
}
