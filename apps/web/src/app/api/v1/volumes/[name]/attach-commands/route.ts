/**
 * GET /api/v1/volumes/:name/attach-commands?device=ID|NAME -> { endpoint, exportName, device, commands }:
 * the TLS commands for that device credential (files under ~/.config/stratus/devices/NAME).
 */
import { deviceAttachCommands } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx, params, req }) =>
  deviceAttachCommands(ctx, { name: params.name!, device: new URL(req.url).searchParams.get("device") ?? "" }),
);
