/**
 * GET /api/v1/orphans/:id/image -> the set's uncommitted writes as a raw image of the volume
 * (application/octet-stream, the volume's size, zeros where the set has nothing). Only from the process
 * whose gateway holds the set (409 elsewhere, naming the gateway); write scope (it is decrypted data).
 */
import { Readable } from "node:stream";
import { exportOrphanSet } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx, params }) => {
  const image = await exportOrphanSet(ctx, { id: params.id! });
  return new Response(Readable.toWeb(image.stream) as ReadableStream<Uint8Array>, {
    headers: {
      "content-type": "application/octet-stream",
      "content-length": String(image.sizeBytes),
      "content-disposition": `attachment; filename="${image.fileName}"`,
      "cache-control": "no-store",
    },
  });
});
