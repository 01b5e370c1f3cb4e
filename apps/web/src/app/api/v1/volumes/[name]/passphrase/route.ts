/** POST /api/v1/volumes/:name/passphrase <- { oldPassphrase?, newPassphrase } -> volume */
import { changeVolumePassphrase } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const POST = restRoute(async ({ ctx, params, body }) => changeVolumePassphrase(ctx, { ...((await body()) as object), name: params.name! } as never));
