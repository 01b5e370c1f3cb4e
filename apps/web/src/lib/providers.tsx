"use client";
/**
 * The client-side providers every page sits in: one QueryClient per browser tab and the tRPC client.
 *
 * Every tRPC request carries `x-stratus-csrf: 1`: the server refuses cookie-authenticated mutations
 * without it (a cross-site form cannot set custom headers). A query answered UNAUTHORIZED means the
 * session ended: go to the sign-in page instead of showing an error.
 */
import { QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import { useState, type ReactNode } from "react";
import superjson from "superjson";
import type { AppRouter } from "@/server/root-router";
import { errorCode } from "./errors";
import { MAX_TRPC_BATCH } from "./limits";
import { TRPCProvider } from "./trpc";

export const CSRF_HEADER = { "x-stratus-csrf": "1" } as const;

function makeQueryClient(): QueryClient {
  return new QueryClient({
    queryCache: new QueryCache({
      onError: (error) => {
        if (errorCode(error) === "UNAUTHORIZED" && !window.location.pathname.startsWith("/sign-")) {
          const back = window.location.pathname + window.location.search;
          window.location.assign(`/sign-in?callbackUrl=${encodeURIComponent(back)}`);
        }
      },
    }),
    defaultOptions: {
      queries: {
        staleTime: 1_000,
        // Client errors (not found, forbidden, bad input) do not get better by asking again.
        retry: (failures, error) => failures < 2 && !isClientError(error),
      },
    },
  });
}

function isClientError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && code !== "INTERNAL_SERVER_ERROR" && code !== "TIMEOUT";
}

export function Providers({ children }: { children: ReactNode }) {
  const [queryClient] = useState(makeQueryClient);
  const [trpcClient] = useState(() =>
    createTRPCClient<AppRouter>({
      links: [
        httpBatchLink({
          url: "/api/trpc",
          transformer: superjson,
          maxItems: MAX_TRPC_BATCH,
          headers: () => CSRF_HEADER,
        }),
      ],
    }),
  );
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  );
}
