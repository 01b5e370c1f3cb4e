import { getAccount, signUp, signUpInput } from "@stratus/control";
import { authedProcedure, publicProcedure, router } from "../trpc";

export const accountRouter = router({
  me: authedProcedure.query(({ ctx }) => getAccount(ctx.service)),
  /** Creates the account; the client then signs in through next-auth (signIn("credentials")). */
  signUp: publicProcedure.input(signUpInput).mutation(({ ctx, input }) => signUp({ runtime: ctx.runtime, requestMeta: ctx.requestMeta }, input)),
});
