import { createApiToken, createApiTokenInput, listApiTokens, revokeApiToken } from "@stratus/control";
import * as z from "zod";
import { authedProcedure, router } from "../trpc";

export const tokenRouter = router({
  list: authedProcedure.query(({ ctx }) => listApiTokens(ctx.service)),
  /** Returns { token, secret }: the secret is shown once and never again. */
  create: authedProcedure.input(createApiTokenInput).mutation(({ ctx, input }) => createApiToken(ctx.service, input)),
  revoke: authedProcedure.input(z.object({ id: z.string().min(1).max(64) })).mutation(({ ctx, input }) => revokeApiToken(ctx.service, input)),
});
