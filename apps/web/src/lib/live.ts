/** How often live volume state is polled: the gateways publish every 2 s. */
export const LIVE_REFETCH_MS = 2_000;
