/**
 * POST /api/v1/volumes/:name/detach <- { force? } -> { volumeId, name, outcome, holder, message }
 * outcome: not-attached | released (the holder let go) | forced (it was fenced). A holder that refuses
 * or does not answer within the handoff timeout is a 409 whose message says so.
 */
import { detachVolume } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const POST = restRoute(async ({ ctx, params, body }) => {
  const value = await body();
  const input = value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  return detachVolume(ctx, { ...input, name: params.name! } as never);
});
