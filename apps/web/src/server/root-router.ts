/**
 * The whole tRPC API (`/api/trpc`). Procedure names are part of the contract in
 * docs/control-plane-design.md; the dashboard imports only the AppRouter type.
 */
import { accountRouter } from "./routers/account";
import { devicesRouter } from "./routers/devices";
import { snapshotRouter } from "./routers/snapshot";
import { tokenRouter } from "./routers/token";
import { volumeRouter } from "./routers/volume";
import { publicProcedure, router } from "./trpc";

export const appRouter = router({
  health: publicProcedure.query(() => ({ ok: true as const })),
  account: accountRouter,
  volume: volumeRouter,
  snapshot: snapshotRouter,
  token: tokenRouter,
  devices: devicesRouter,
});

export type AppRouter = typeof appRouter;
