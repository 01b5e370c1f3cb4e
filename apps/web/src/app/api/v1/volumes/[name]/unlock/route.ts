/** POST /api/v1/volumes/:name/unlock <- { passphrase } -> volume */
import { unlockVolume } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const POST = restRoute(async ({ ctx, params, body }) => unlockVolume(ctx, { ...((await body()) as object), name: params.name! } as never));
