/**
 * GET /api/v1/nbd-ca -> { certPem, fingerprintSha256 }: the deployment CA that signs the gateway's
 * certificate and the device certificates (public; signed-in callers only, like the rest of the API).
 */
import { getNbdCa } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx }) => getNbdCa(ctx.runtime));
