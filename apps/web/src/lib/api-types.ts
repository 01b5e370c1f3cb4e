/** The shapes the API returns, inferred from the server's router (type-only: no server code ships). */
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/root-router";

export type RouterOutputs = inferRouterOutputs<AppRouter>;
export type RouterInputs = inferRouterInputs<AppRouter>;
export type VolumeItem = RouterOutputs["volume"]["list"][number];
export type VolumeDetail = RouterOutputs["volume"]["get"];
export type TokenItem = RouterOutputs["token"]["list"][number];
export type DeviceItem = RouterOutputs["devices"]["list"][number];
export type CreatedDevice = RouterOutputs["devices"]["create"];
