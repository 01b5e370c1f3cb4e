/** tRPC over HTTP at /api/trpc (superjson). Context: the caller (session cookie or bearer token). */
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { MAX_TRPC_BATCH } from "@/lib/limits";
import { appRouter } from "@/server/root-router";
import { contextFromRequest } from "@/server/context";
import { cappedBody } from "@/server/request-body";

export const dynamic = "force-dynamic";

// The body is read under the size cap before tRPC parses it.
const handleTrpc = cappedBody((req: Request) =>
  fetchRequestHandler({ endpoint: "/api/trpc", req, router: appRouter, maxBatchSize: MAX_TRPC_BATCH, createContext: () => contextFromRequest(req) }),
);

export { handleTrpc as GET, handleTrpc as POST };
