/** POST /api/v1/volumes/:name/import-cancel -> { volumeId }: the import stops and its volume is deleted. */
import { cancelImport } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const POST = restRoute(async ({ ctx, params }) => cancelImport(ctx, { name: params.name! }));
