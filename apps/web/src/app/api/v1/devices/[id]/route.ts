/** DELETE /api/v1/devices/:id -> the revoked credential; its next TLS handshake is refused. */
import { revokeDeviceCredential } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const DELETE = restRoute(async ({ ctx, params }) => revokeDeviceCredential(ctx, { id: params.id! }));
