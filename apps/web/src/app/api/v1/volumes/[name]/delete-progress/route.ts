/** GET /api/v1/volumes/:name/delete-progress -> { volumeId, state, objectsDeleted, error? } */
import { volumeDeleteProgress } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx, params }) => volumeDeleteProgress(ctx, { name: params.name! }));
