/**
 * Admins only. GET /api/v1/invitations -> { invitations }; POST /api/v1/invitations <- { expiresInHours? }
 * -> 201 { invitation, token, path } (the token is shown this once).
 */
import { createInvitation, listInvitations } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx }) => ({ invitations: await listInvitations(ctx) }));
export const POST = restRoute(async ({ ctx, body }) => createInvitation(ctx, (await body()) as never), { status: 201 });
