/**
 * Request bodies and tRPC batches are capped before they are read, on every API route (tRPC, REST,
 * next-auth): a declared Content-Length over the cap is refused without reading a byte, an undeclared
 * (chunked) body is read only until it passes the cap; a batch of more calls than the client sends is
 * refused.
 */
import { describe, expect, it } from "vitest";
import * as authRoute from "@/app/api/auth/[...nextauth]/route";
import * as trpcRoute from "@/app/api/trpc/[trpc]/route";
import * as volumesRoute from "@/app/api/v1/volumes/route";
import { MAX_TRPC_BATCH } from "@/lib/limits";
import { MAX_BODY_BYTES } from "./request-body";
import { makeRequest, ORIGIN, useSignedInUser } from "./testing";

/** A body stream of 16 KiB pieces, `total` bytes in all, that counts what was pulled from it. */
function countingBody(total: number): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= total) return controller.close();
      const piece = new Uint8Array(Math.min(16 * 1024, total - pulled)).fill(0x7b);
      pulled += piece.byteLength;
      controller.enqueue(piece);
    },
  });
  return { stream, pulled: () => pulled };
}

describe("request limits", () => {
  const user = useSignedInUser("l@example.com");

  function oversized(path: string, declare: boolean): { req: Request; pulled: () => number } {
    const total = 4 * MAX_BODY_BYTES;
    const body = countingBody(total);
    const headers = makeRequest(user().caller, "POST", path, {}).headers;
    if (declare) headers.set("content-length", String(total));
    const req = new Request(`${ORIGIN}${path}`, { method: "POST", headers, body: body.stream, duplex: "half" } as RequestInit);
    return { req, pulled: body.pulled };
  }

  const routes: [string, (req: Request) => Promise<Response>][] = [
    ["/api/trpc/volume.create", (req) => trpcRoute.POST(req)],
    ["/api/v1/volumes", (req) => volumesRoute.POST(req)],
    ["/api/auth/callback/credentials", (req) => authRoute.POST(req as never)],
  ];

  it.each(routes)("%s: a declared oversized body is refused unread, an undeclared one once it passes the cap", async (path, call) => {
    const declared = oversized(path, true);
    const refused = await call(declared.req);
    expect(refused.status).toBe(413);
    expect(await refused.json()).toEqual({ error: { code: "PAYLOAD_TOO_LARGE", message: `request body too large (at most ${MAX_BODY_BYTES} bytes)` } });
    // A stream starts one piece ahead; nothing past that was read.
    expect(declared.pulled()).toBeLessThanOrEqual(16 * 1024);

    const chunked = oversized(path, false);
    expect((await call(chunked.req)).status).toBe(413);
    expect(chunked.pulled()).toBeLessThanOrEqual(MAX_BODY_BYTES + 2 * 16 * 1024);
  });

  it("refuses a tRPC batch larger than the client ever sends", async () => {
    const batch = (n: number) => {
      const paths = Array.from({ length: n }, () => "account.me").join(",");
      const input = encodeURIComponent(JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [i, {}]))));
      return trpcRoute.GET(makeRequest(user().caller, "GET", `/api/trpc/${paths}?batch=1&input=${input}`));
    };
    expect((await batch(MAX_TRPC_BATCH)).status).toBe(200);
    const refused = await batch(MAX_TRPC_BATCH + 1);
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await refused.json())).toContain("Batch call exceeds maximum size");
  });
});
