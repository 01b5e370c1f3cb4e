/**
 * The typed tRPC hooks the pages use: `const trpc = useTRPC()` then
 * `useQuery(trpc.volume.list.queryOptions())`. The router type comes from the server; no server code
 * reaches the browser bundle (type-only import).
 */
"use client";
import { createTRPCContext } from "@trpc/tanstack-react-query";
import type { AppRouter } from "@/server/root-router";

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>();
