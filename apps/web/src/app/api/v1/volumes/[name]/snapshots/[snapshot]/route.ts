/** DELETE /api/v1/volumes/:name/snapshots/:snapshot -> { message }; what only it held goes after the GC grace. */
import { deleteSnapshot } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const DELETE = restRoute(async ({ ctx, params }) => deleteSnapshot(ctx, { name: params.name!, snapshot: params.snapshot! }));
