/**
 * GET  /api/v1/volumes/:name/snapshots -> { snapshots: [snapshot] }, oldest first
 * POST /api/v1/volumes/:name/snapshots <- { snapshot } -> snapshot (201); an attached volume's holder commits first
 */
import { createSnapshot, listSnapshots } from "@stratus/control";
import { restRoute } from "@/server/rest/handler";

export const dynamic = "force-dynamic";

export const GET = restRoute(async ({ ctx, params }) => ({ snapshots: await listSnapshots(ctx, { name: params.name! }) }));

export const POST = restRoute(
  async ({ ctx, params, body }) => {
    const value = await body();
    const input = value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
    return createSnapshot(ctx, { ...input, name: params.name! } as never);
  },
  { status: 201 },
);
