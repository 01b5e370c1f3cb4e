/**
 * GET /api/v1/orphans/:id -> orphan set + { sizeBytes, chunkSize, dirName } (what an export on the holding gateway's host needs)
 * DELETE /api/v1/orphans/:id -> { id, discarded: true }: the holding gateway deletes its folder.
 */
import { discardOrphanSet, getOrphanSet } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx, params }) => getOrphanSet(ctx, { id: params.id! }));
export const DELETE = restRoute(async ({ ctx, params }) => discardOrphanSet(ctx, { id: params.id! }));
