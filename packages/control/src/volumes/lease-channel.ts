/**
 * The gateways' channel for volume leases (Redis pub/sub, one per deployment): a device that wants a
 * held volume asks its holder to hand it over, the holder answers, and a force detach tells the
 * fenced holder to stop at once instead of at its next heartbeat. Messages are hints: the lease row in
 * Postgres stays the truth, so a lost message costs time (a wait for the lease to expire), never data.
 */
import type { Redis } from "ioredis";
import * as z from "zod";

export const volumeLeaseChannel = (prefix: string) => `${prefix}:leases`;

const handoffRequest = z.object({
  kind: z.literal("handoff"),
  requestId: z.string().min(1),
  volumeId: z.string().min(1),
  /** The holder's token: a holder whose lease has another token ignores the request. */
  fencingToken: z.number().int(),
  /** Who asks, as the holder logs it ("laptop through gateway gw-2", "dashboard detach"). */
  requester: z.string(),
});

const handoffReply = z.object({
  kind: z.literal("handoff-reply"),
  requestId: z.string().min(1),
  volumeId: z.string().min(1),
  /** released: flushed, committed, clients disconnected, lease given back. refused: still held, `reason` says why. */
  outcome: z.enum(["released", "refused"]),
  reason: z.string().optional(),
});

const fenceNotice = z.object({
  kind: z.literal("fence"),
  volumeId: z.string().min(1),
  /** Tokens up to this one are fenced (the lease was forced away from them). */
  fencingToken: z.number().int(),
  reason: z.string(),
});

/** Commit now (a snapshot is about to be taken): every write acknowledged so far reaches the bucket. */
const commitRequest = z.object({
  kind: z.literal("commit"),
  requestId: z.string().min(1),
  volumeId: z.string().min(1),
  fencingToken: z.number().int(),
});

const commitReply = z.object({
  kind: z.literal("commit-reply"),
  requestId: z.string().min(1),
  volumeId: z.string().min(1),
  /** committed: the map in the database holds every write acknowledged before the request. */
  outcome: z.enum(["committed", "refused"]),
  reason: z.string().optional(),
});

const leaseMessage = z.discriminatedUnion("kind", [handoffRequest, handoffReply, fenceNotice, commitRequest, commitReply]);

export type CommitRequest = z.infer<typeof commitRequest>;
export type CommitReply = z.infer<typeof commitReply>;
export type HandoffRequest = z.infer<typeof handoffRequest>;
export type HandoffReply = z.infer<typeof handoffReply>;
export type FenceNotice = z.infer<typeof fenceNotice>;
export type LeaseMessage = z.infer<typeof leaseMessage>;

/** The message, or undefined for anything that is not one (another version, garbage). */
export function parseLeaseMessage(text: string): LeaseMessage | undefined {
  try {
    const parsed = leaseMessage.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function publishLeaseMessage(redis: Redis, prefix: string, message: LeaseMessage): Promise<void> {
  await redis.publish(volumeLeaseChannel(prefix), JSON.stringify(message));
}
