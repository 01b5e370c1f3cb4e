/**
 * GET /api/v1/devices -> { devices }; POST <- { name, volumes?, expiresInDays? } -> 201
 * { credential, secret } (the secret is in this answer only: PSK file, client key and certificates).
 */
import { createDeviceCredential, createDeviceCredentialInput, listDeviceCredentials, parseInput } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx }) => ({ devices: await listDeviceCredentials(ctx) }));
// Parsed here so bad input is a 400 naming its field (the verb's own parse throws a bare ZodError).
export const POST = restRoute(async ({ ctx, body }) => createDeviceCredential(ctx, parseInput(createDeviceCredentialInput, await body())), { status: 201 });
