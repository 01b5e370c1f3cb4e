/**
 * Asks the gateway that holds a volume to commit now, over the lease channel, and waits for its
 * answer: a snapshot of an attached volume then holds every write flushed before the request. No
 * holder (not attached) means the database's map is already everything there is.
 */
import { findLiveLease, type VolumeRow } from "@stratus/db";
import { randomUUID } from "node:crypto";
import type { Runtime } from "../context";
import { ServiceError } from "../errors";
import { describeHolder } from "../volumes/attached";
import { DEFAULT_HANDOFF_TIMEOUT_MS } from "../volumes/detach";
import { parseLeaseMessage, publishLeaseMessage, volumeLeaseChannel, type CommitReply } from "../volumes/lease-channel";
import { Waiter } from "../volumes/waiter";

export async function commitThroughHolder(runtime: Runtime, row: VolumeRow): Promise<"not-attached" | "committed"> {
  const lease = await findLiveLease(runtime.database.db, row.id, new Date());
  if (!lease) return "not-attached";
  const timeoutMs = runtime.config.handoffTimeoutMs ?? DEFAULT_HANDOFF_TIMEOUT_MS;
  const requestId = randomUUID();
  const subscriber = runtime.redis.duplicate();
  const waiter = new Waiter();
  let reply: CommitReply | undefined;
  subscriber.on("error", () => undefined); // shows as the timeout
  subscriber.on("message", (_channel: string, text: string) => {
    const message = parseLeaseMessage(text);
    if (message?.kind === "commit-reply" && message.requestId === requestId) {
      reply = message;
      waiter.wake();
    }
  });
  const holder = describeHolder(lease);
  try {
    await subscriber.subscribe(volumeLeaseChannel(runtime.config.prefix));
    await publishLeaseMessage(runtime.redis, runtime.config.prefix, { kind: "commit", requestId, volumeId: row.id, fencingToken: lease.fencingToken });
    const deadline = Date.now() + timeoutMs;
    while (reply === undefined) {
      const left = deadline - Date.now();
      if (left <= 0) throw new ServiceError("CONFLICT", `${holder} did not commit volume ${row.name} within ${Math.round(timeoutMs / 1000)}s; try again`);
      await waiter.wait(Math.min(200, left));
      // A holder that let go meanwhile committed on its way out.
      if (reply === undefined && (await findLiveLease(runtime.database.db, row.id, new Date()))?.fencingToken !== lease.fencingToken) return "committed";
    }
  } finally {
    subscriber.disconnect();
  }
  if (reply.outcome === "refused") throw new ServiceError("CONFLICT", `${holder} could not commit volume ${row.name}: ${reply.reason ?? "no reason given"}`);
  return "committed";
}
