/** POST /api/v1/volumes/:name/lock -> { volume, wasUnlocked, message } */
import { lockVolume } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const POST = restRoute(async ({ ctx, params }) => lockVolume(ctx, { name: params.name! }));
