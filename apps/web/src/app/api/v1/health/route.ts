export const dynamic = "force-dynamic";

/** GET /api/v1/health: no token needed. */
export function GET(): Response {
  return Response.json({ ok: true });
}
