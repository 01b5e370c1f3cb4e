/** tRPC over HTTP at /api/trpc (superjson). Context: the caller (session cookie or bearer token). */
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { appRouter } from "@/server/root-router";
import { contextFromRequest } from "@/server/context";

export const dynamic = "force-dynamic";

function handleTrpc(req: Request): Promise<Response> {
  return fetchRequestHandler({ endpoint: "/api/trpc", req, router: appRouter, createContext: () => contextFromRequest(req) });
}

export { handleTrpc as GET, handleTrpc as POST };
