/** POST /api/v1/recover <- { passphrase? } -> { recovered, skipped } (admins: rebuild volumes from the bucket) */
import { recoverVolumes } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const POST = restRoute(async ({ ctx, body }) => recoverVolumes(ctx, (await body()) as never));
