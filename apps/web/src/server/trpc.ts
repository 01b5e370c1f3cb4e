/**
 * tRPC's one initialisation: the context every procedure sees and the base procedures. Routers
 * validate input with zod, call a domain verb and let `errorFormatter` map errors in one place.
 */
import { initTRPC } from "@trpc/server";
import superjson from "superjson";

export interface Context {
  /** Filled by the auth layer: the signed-in user or the API token's owner. */
  userId: string | null;
}

const t = initTRPC.context<Context>().create({ transformer: superjson });

export const router = t.router;
export const publicProcedure = t.procedure;
