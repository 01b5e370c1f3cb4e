/**
 * Detaching a volume from the device that holds it (issue 22), for the dashboard, REST and the CLI.
 *
 * Cooperative (the default): the holder's gateway is asked over the lease channel to hand the volume
 * over; it flushes, commits, disconnects its clients and deletes its lease row. The verb waits for the
 * lease row to go (the truth) or for the holder's refusal, bounded by `handoffTimeoutMs`: a holder
 * that is gone, hung or too slow is reported, and force is the way past it.
 *
 * Force: the lease is taken away in one transaction that also raises the volume's fencing token, so
 * the holder's next commit fails whatever it does; the "fence" message only makes it stop at once
 * instead of at its next heartbeat. Its writes not yet committed are kept aside as an orphan set.
 */
import { findLiveLease, findUserById, forceReleaseLease, type VolumeLeaseRow, type VolumeRow } from "@stratus/db";
import { randomUUID } from "node:crypto";
import * as z from "zod";
import { recordActivity } from "../activity/activity";
import { requireWrite, type ActorVia, type ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { describeHolder } from "./attached";
import { existingVolumeName } from "./inputs";
import { parseLeaseMessage, publishLeaseMessage, volumeLeaseChannel, type HandoffReply } from "./lease-channel";
import { findOwnedVolume } from "./lookup";
import { Waiter } from "./waiter";
import { parseInput } from "./volumes";

/** How long a cooperative detach waits for the holder when RuntimeSettings.handoffTimeoutMs is unset. */
export const DEFAULT_HANDOFF_TIMEOUT_MS = 30_000;
/** How often the lease row is checked while waiting (a lost reply costs at most this). */
export const HANDOFF_POLL_MS = 200;

export const detachVolumeInput = z.object({
  name: existingVolumeName,
  /** Take the volume away without the holder's cooperation: it is fenced. */
  force: z.boolean().optional(),
});

export interface DetachOutcome {
  volumeId: string;
  name: string;
  /** not-attached: nobody held it (nothing changed); released: the holder let go; forced: it was fenced. */
  outcome: "not-attached" | "released" | "forced";
  /** The holder that was detached ("laptop (10.0.0.2) since … UTC"), null when nobody held it. */
  holder: string | null;
  /** One sentence for the user. */
  message: string;
}

const VIA: Record<ActorVia, string> = { session: "the dashboard", token: "the API", local: "the local CLI" };

export async function detachVolume(ctx: ServiceContext, rawInput: z.input<typeof detachVolumeInput>): Promise<DetachOutcome> {
  requireWrite(ctx);
  const input = parseInput(detachVolumeInput, rawInput);
  const row = await findOwnedVolume(ctx, input.name);
  const outcome = input.force ? await forceDetach(ctx, row) : await cooperativeDetach(ctx, row);
  if (outcome.outcome !== "not-attached") {
    await recordActivity(ctx, {
      ownerId: row.ownerId,
      volumeId: row.id,
      volumeName: row.name,
      action: "volume.detach",
      detail: { force: outcome.outcome === "forced", holder: outcome.holder },
    });
    ctx.runtime.logger.info({ volumeId: row.id, volume: row.name, outcome: outcome.outcome }, "volume detached");
  }
  return outcome;
}

const notAttached = (row: VolumeRow): DetachOutcome => ({
  volumeId: row.id,
  name: row.name,
  outcome: "not-attached",
  holder: null,
  message: `volume ${row.name} is not attached`,
});

async function forceDetach(ctx: ServiceContext, row: VolumeRow): Promise<DetachOutcome> {
  const { runtime } = ctx;
  const removed = await forceReleaseLease(runtime.database.db, row.id, new Date());
  if (!removed) return notAttached(row);
  // The token is already raised: the holder cannot commit any more. The notice only saves it the wait
  // for its next heartbeat, so a Redis failure here is logged, not the user's problem.
  try {
    await publishLeaseMessage(runtime.redis, runtime.config.prefix, {
      kind: "fence",
      volumeId: row.id,
      fencingToken: removed.fencingToken,
      reason: `force detached by ${await describeActor(ctx)}`,
    });
  } catch (error) {
    runtime.logger.warn({ volumeId: row.id, err: error }, "could not publish the fence notice; the holder stops at its next heartbeat");
  }
  const holder = describeHolder(removed);
  return {
    volumeId: row.id,
    name: row.name,
    outcome: "forced",
    holder,
    message: `force detached volume ${row.name} from ${holder}; its unflushed writes are kept aside as an orphan set, not committed`,
  };
}

async function cooperativeDetach(ctx: ServiceContext, row: VolumeRow): Promise<DetachOutcome> {
  const { runtime } = ctx;
  const db = runtime.database.db;
  const lease = await findLiveLease(db, row.id, new Date());
  if (!lease) return notAttached(row);
  const holder = describeHolder(lease);
  const timeoutMs = runtime.config.handoffTimeoutMs ?? DEFAULT_HANDOFF_TIMEOUT_MS;
  const requestId = randomUUID();

  // Subscribed before asking, so the reply cannot come before anyone listens. A subscribed connection
  // can do nothing else: it is a duplicate of the runtime's, closed when this detach ends.
  const subscriber = runtime.redis.duplicate();
  const waiter = new Waiter();
  let reply: HandoffReply | undefined;
  subscriber.on("error", () => undefined); // a failure shows as the timeout; the lease row decides
  subscriber.on("message", (_channel: string, text: string) => {
    const message = parseLeaseMessage(text);
    if (message?.kind === "handoff-reply" && message.requestId === requestId) {
      reply = message;
      waiter.wake();
    }
  });
  try {
    await subscriber.subscribe(volumeLeaseChannel(runtime.config.prefix));
    await publishLeaseMessage(runtime.redis, runtime.config.prefix, {
      kind: "handoff",
      requestId,
      volumeId: row.id,
      fencingToken: lease.fencingToken,
      requester: `detach from ${VIA[ctx.actor.via]}`,
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (reply?.outcome === "refused") {
        throw new ServiceError("CONFLICT", `${holder} refused to let go of volume ${row.name}: ${reply.reason ?? "no reason given"}`);
      }
      // The lease row is the truth: gone (or another token: someone took it after) means it let go.
      if (!stillHeld(await findLiveLease(db, row.id, new Date()), lease)) break;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new ServiceError(
          "CONFLICT",
          `${holder} did not let go of volume ${row.name} within ${formatWait(timeoutMs)}: ` +
            "force detach fences it without its cooperation (its unflushed writes are kept aside as an orphan set)",
        );
      }
      await waiter.wait(Math.min(HANDOFF_POLL_MS, left));
    }
  } finally {
    subscriber.disconnect();
  }
  return { volumeId: row.id, name: row.name, outcome: "released", holder, message: `detached volume ${row.name} from ${holder}` };
}

const formatWait = (ms: number) => (ms >= 1000 ? `${Math.round(ms / 1000)}s` : `${ms} ms`);

const stillHeld = (current: VolumeLeaseRow | undefined, asked: VolumeLeaseRow) => current !== undefined && current.fencingToken === asked.fencingToken;

/** "alice@example.com through the dashboard": what the fenced holder logs as the reason. */
async function describeActor(ctx: ServiceContext): Promise<string> {
  const user = await findUserById(ctx.runtime.database.db, ctx.actor.userId);
  return `${user?.email ?? ctx.actor.userId} through ${VIA[ctx.actor.via]}`;
}
