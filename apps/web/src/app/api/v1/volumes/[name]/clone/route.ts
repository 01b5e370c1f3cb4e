/**
 * POST /api/v1/volumes/:name/clone <- { snapshot, name, passphrase?, parentPassphrase?, autoUnlock? } -> volume (201)
 * A new volume made at once from the snapshot :name@snapshot, sharing its chunk objects.
 */
import { cloneVolume } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const POST = restRoute(
  async ({ ctx, params, body }) => {
    const value = await body();
    const { snapshot, ...rest } = value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
    return cloneVolume(ctx, { ...rest, source: `${params.name!}@${String(snapshot ?? "")}` } as never);
  },
  { status: 201 },
);
