/** GET /api/v1/volumes/:name/orphans -> { orphanSets: [orphan set] }: the volume's orphan sets, newest first. */
import { listVolumeOrphanSets } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx, params }) => ({ orphanSets: await listVolumeOrphanSets(ctx, { name: params.name! }) }));
