/**
 * Request bodies are read with a cap: a Content-Length over it is refused before a byte is read, and a
 * body without one (chunked) is read only until it passes the cap, then dropped. Every API route (tRPC,
 * REST, next-auth) reads its body through here, so no request makes the server buffer more than this.
 */
export const MAX_BODY_BYTES = 64 * 1024;

export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`request body too large (at most ${limit} bytes)`);
  }
}

export async function readCappedBody(req: Request, limit = MAX_BODY_BYTES): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > limit) throw new BodyTooLarge(limit);
  if (!req.body) return new Uint8Array(new ArrayBuffer(0));
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw new BodyTooLarge(limit);
    }
    parts.push(value);
  }
  const body = new Uint8Array(new ArrayBuffer(total));
  let at = 0;
  for (const part of parts) {
    body.set(part, at);
    at += part.byteLength;
  }
  return body;
}

/** The same request with its body read under the cap (for handlers that read the body themselves). */
export async function withCappedBody(req: Request, limit = MAX_BODY_BYTES): Promise<Request> {
  if (req.method === "GET" || req.method === "HEAD") return req;
  const body = await readCappedBody(req, limit);
  return new Request(req.url, { method: req.method, headers: req.headers, body, signal: req.signal });
}

export function tooLargeResponse(error: BodyTooLarge): Response {
  return new Response(JSON.stringify({ error: { code: "PAYLOAD_TOO_LARGE", message: error.message } }), {
    status: 413,
    headers: { "content-type": "application/json", "cache-control": "no-store", connection: "close" },
  });
}

/** Wraps a route handler: its request's body is capped first; too large answers 413 unread. */
export function cappedBody<A extends unknown[]>(handler: (req: Request, ...rest: A) => Promise<Response>) {
  return async (req: Request, ...rest: A): Promise<Response> => {
    let capped: Request;
    try {
      capped = await withCappedBody(req);
    } catch (error) {
      if (error instanceof BodyTooLarge) return tooLargeResponse(error);
      throw error;
    }
    return handler(capped, ...rest);
  };
}
