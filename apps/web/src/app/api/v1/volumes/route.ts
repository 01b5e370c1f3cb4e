/** GET /api/v1/volumes -> { volumes }; POST /api/v1/volumes <- { name, size, chunkSize?, durability?, passphrase?, autoUnlock? } -> 201 volume */
import { createVolume, listVolumes } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx }) => ({ volumes: await listVolumes(ctx) }));
export const POST = restRoute(async ({ ctx, body }) => createVolume(ctx, (await body()) as never), { status: 201 });
