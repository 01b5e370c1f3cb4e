/** Calls in one tRPC batch: the client's httpBatchLink sends at most this many, the server refuses more. */
export const MAX_TRPC_BATCH = 16;
