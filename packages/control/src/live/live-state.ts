/**
 * Live state of open volumes, published by the gateway that holds each one (every 2 s, TTL 10 s) and
 * read by the control plane: `<prefix>:live:<volumeId>`. A missing key means "not attached anywhere".
 */
import type { Redis } from "ioredis";
import * as z from "zod";

export const LIVE_PUBLISH_INTERVAL_MS = 2_000;
export const LIVE_TTL_SECONDS = 10;

export const liveKey = (prefix: string, volumeId: string) => `${prefix}:live:${volumeId}`;

export const liveStatsSchema = z.object({
  logicalBytes: z.number(),
  storedBytes: z.number(),
  compressionRatio: z.number(),
  dirtyBytes: z.number(),
  chunksStored: z.number(),
  epoch: z.number(),
  cachedBytes: z.number(),
  queueDepth: z.number(),
  lastCommitAt: z.number().optional(),
  /** Bytes NBD clients read / wrote since the engine opened. */
  readBytes: z.number().default(0),
  writtenBytes: z.number().default(0),
});

export const liveStateSchema = z.object({
  gatewayId: z.string(),
  connections: z.number().int(),
  /** ms since the Unix epoch. */
  attachedSince: z.number(),
  clients: z.array(z.string()),
  stats: liveStatsSchema,
  updatedAt: z.number(),
});
export type LiveState = z.infer<typeof liveStateSchema>;

export async function publishLiveState(redis: Redis, prefix: string, volumeId: string, state: LiveState): Promise<void> {
  await redis.set(liveKey(prefix, volumeId), JSON.stringify(state), "EX", LIVE_TTL_SECONDS);
}

export async function clearLiveState(redis: Redis, prefix: string, volumeId: string): Promise<void> {
  await redis.del(liveKey(prefix, volumeId));
}

/** Live state per volume id (absent ids: not attached). One round trip for the whole list. */
export async function readLiveStates(redis: Redis, prefix: string, volumeIds: readonly string[]): Promise<Map<string, LiveState>> {
  const out = new Map<string, LiveState>();
  if (volumeIds.length === 0) return out;
  const values = await redis.mget(...volumeIds.map((id) => liveKey(prefix, id)));
  values.forEach((value, i) => {
    if (!value) return;
    try {
      const parsed = liveStateSchema.safeParse(JSON.parse(value));
      if (parsed.success) out.set(volumeIds[i]!, parsed.data);
    } catch {
      // a malformed entry reads as "not attached"
    }
  });
  return out;
}
