/**
 * The gateways' channel for orphan sets (Redis pub/sub, one per deployment): a discard tells the gateway
 * whose disk holds the set to delete its folder. A hint only: the row in Postgres is marked discarded
 * first, and a gateway that missed the message deletes the folder at its next start.
 */
import type { Redis } from "ioredis";
import * as z from "zod";

export const orphanSetsChannel = (prefix: string) => `${prefix}:orphans`;

const discardNotice = z.object({
  kind: z.literal("discard"),
  orphanSetId: z.string().min(1),
  /** Only this gateway acts on it. */
  gatewayId: z.string().min(1),
  /** The folder under <cache>/orphans/ (a plain name, never a path). */
  dirName: z.string().regex(/^[A-Za-z0-9_.-]+$/),
});

export type OrphanDiscardNotice = z.infer<typeof discardNotice>;

/** The message, or undefined for anything that is not one (another version, garbage). */
export function parseOrphanMessage(text: string): OrphanDiscardNotice | undefined {
  try {
    const parsed = discardNotice.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function publishOrphanMessage(redis: Redis, prefix: string, message: OrphanDiscardNotice): Promise<void> {
  await redis.publish(orphanSetsChannel(prefix), JSON.stringify(message));
}
