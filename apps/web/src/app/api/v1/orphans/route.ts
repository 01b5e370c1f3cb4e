/** GET /api/v1/orphans -> { orphanSets: [orphan set] }: every orphan set of the caller's volumes, newest first. */
import { listAllOrphanSets } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx }) => ({ orphanSets: await listAllOrphanSets(ctx) }));
