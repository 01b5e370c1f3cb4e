/**
 * GET /api/v1/volumes/:name -> volume; PATCH <- { size, confirmShrink? } -> { volume, chunksFreed };
 * DELETE -> 202 { volumeId, jobId } (objects removed by a background job: poll delete-progress).
 * POST /api/v1/volumes/import <- { name, url, s3?, chunkSize?, durability?, passphrase? } -> 202 { volume, jobId, format, source }:
 * here rather than in a static import/ folder, which would hide a volume named "import" from GET.
 */
import { deleteVolume, getVolume, importVolume, resizeVolume } from "@stratus/control";
import { json, restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx, params }) => getVolume(ctx, { name: params.name! }));
export const PATCH = restRoute(async ({ ctx, params, body }) => resizeVolume(ctx, { ...(await bodyObject(body)), name: params.name! } as never));
export const DELETE = restRoute(async ({ ctx, params, body }) => deleteVolume(ctx, { ...(await bodyObject(body)), name: params.name! } as never), {
  status: 202,
});

export const POST = restRoute(
  async ({ ctx, params, body }) => {
    if (params.name !== "import") return json(405, { error: { code: "METHOD_NOT_ALLOWED", message: "POST is for /api/v1/volumes/import only" } });
    return importVolume(ctx, (await bodyObject(body)) as never);
  },
  { status: 202 },
);

async function bodyObject(body: () => Promise<unknown>): Promise<Record<string, unknown>> {
  const value = await body();
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
