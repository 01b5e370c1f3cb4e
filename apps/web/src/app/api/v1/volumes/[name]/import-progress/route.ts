/** GET /api/v1/volumes/:name/import-progress -> { volumeId, state, progress?: { phase, bytesDone, bytesTotal, rateBytesPerSecond, etaSeconds?, source }, error? } */
import { volumeImportProgress } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx, params }) => volumeImportProgress(ctx, { name: params.name! }));
