/**
 * GET /api/v1/volumes/:name -> volume; PATCH <- { size, confirmShrink? } -> { volume, chunksFreed };
 * DELETE -> 202 { volumeId, jobId } (objects removed by a background job: poll delete-progress).
 */
import { deleteVolume, getVolume, resizeVolume } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx, params }) => getVolume(ctx, { name: params.name! }));
export const PATCH = restRoute(async ({ ctx, params, body }) => resizeVolume(ctx, { ...(await bodyObject(body)), name: params.name! } as never));
export const DELETE = restRoute(async ({ ctx, params, body }) => deleteVolume(ctx, { ...(await bodyObject(body)), name: params.name! } as never), {
  status: 202,
});

async function bodyObject(body: () => Promise<unknown>): Promise<Record<string, unknown>> {
  const value = await body();
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
