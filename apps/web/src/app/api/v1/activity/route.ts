/** GET /api/v1/activity -> { activity: [...] }: the account's activity, newest first (the last 200 entries). */
import { listAccountActivity } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx }) => ({ activity: await listAccountActivity(ctx) }));
