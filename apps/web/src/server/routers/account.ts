import {
  createInvitation,
  createInvitationInput,
  getAccount,
  listAccountActivity,
  listInvitations,
  revokeInvitation,
  signUp,
  signUpInput,
} from "@stratus/control";
import * as z from "zod";
import { signUpPolicy } from "../sign-up-policy";
import { authedProcedure, publicProcedure, router } from "../trpc";

export const accountRouter = router({
  me: authedProcedure.query(({ ctx }) => getAccount(ctx.service)),
  /** Sign-ins, sign-outs, attaches, detaches and every volume's activity, newest first. */
  activity: authedProcedure.query(({ ctx }) => listAccountActivity(ctx.service)),
  /** Creates the account; the client then signs in through next-auth (signIn("credentials")). */
  signUp: publicProcedure
    .input(signUpInput)
    .mutation(({ ctx, input }) => signUp({ runtime: ctx.runtime, requestMeta: ctx.requestMeta }, input, signUpPolicy(ctx.runtime))),
  /** Admins: a single-use sign-up link (its token shown once). */
  createInvitation: authedProcedure.input(createInvitationInput).mutation(({ ctx, input }) => createInvitation(ctx.service, input)),
  listInvitations: authedProcedure.query(({ ctx }) => listInvitations(ctx.service)),
  revokeInvitation: authedProcedure.input(z.object({ id: z.string().min(1).max(64) })).mutation(({ ctx, input }) => revokeInvitation(ctx.service, input)),
});
