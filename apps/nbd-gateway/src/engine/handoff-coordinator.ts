/**
 * This gateway's end of the deployment's lease channel (lease-channel.ts in @stratus/control): it
 * asks other gateways' holders to hand a volume over for its own clients, hands over the volumes it
 * holds when asked, and stops serving a volume at once when told it was force detached. Messages only
 * speed things up: a lost one costs a wait for the lease to expire, never data.
 */
import { randomUUID } from "node:crypto";
import {
  parseLeaseMessage,
  publishLeaseMessage,
  volumeLeaseChannel,
  type CommitReply,
  type CommitRequest,
  type HandoffReply,
  type HandoffRequest,
} from "@stratus/control";
import type { VolumeLeaseRow } from "@stratus/db";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { GatewayIdentity } from "../gateway/gateway-identity";
import type { LeaseDevice } from "./lease-keeper";
import type { VolumeEngines } from "./volume-engines";

export interface HandoffCoordinatorOptions {
  /** Publishes requests and replies (a connection in normal mode). */
  publisher: Redis;
  /** Subscribed to the channel (a connection of its own: subscriber mode takes it over). */
  subscriber: Redis;
  prefix: string;
  identity: GatewayIdentity;
  engines: Pick<VolumeEngines, "handOff" | "fence" | "commitHeld">;
  /** The token this gateway holds the volume's lease with, if it does. */
  heldToken: (volumeId: string) => number | undefined;
  /** How long an ask waits for an answer before it stops listening (the open's own wait is the same). */
  timeoutMs: number;
  logger: Logger;
}

export class HandoffCoordinator {
  readonly #waiting = new Map<string, (reply: HandoffReply) => void>();

  constructor(private readonly options: HandoffCoordinatorOptions) {}

  async start(): Promise<void> {
    this.options.subscriber.on("message", (_channel: string, text: string) => this.#onMessage(text));
    await this.options.subscriber.subscribe(volumeLeaseChannel(this.options.prefix));
  }

  /**
   * Asks the holder of `lease` (another gateway, or another run) to hand the volume over to `requester`.
   * Resolves with its refusal, or undefined: it let go, or did not answer in time.
   */
  ask(volumeId: string, lease: VolumeLeaseRow, requester: LeaseDevice): Promise<string | undefined> {
    const requestId = randomUUID();
    const { logger, identity } = this.options;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.#waiting.delete(requestId)) resolve(undefined);
      }, this.options.timeoutMs);
      timer.unref();
      this.#waiting.set(requestId, (reply) => {
        this.#waiting.delete(requestId);
        clearTimeout(timer);
        resolve(reply.outcome === "refused" ? (reply.reason ?? "the holder refused to hand over") : undefined);
      });
      const request: HandoffRequest = {
        kind: "handoff",
        requestId,
        volumeId,
        fencingToken: lease.fencingToken,
        requester: `${requester.holderName} through gateway ${identity.gatewayId}`,
      };
      logger.info({ volumeId, holder: lease.holderName, holderGateway: lease.gatewayId }, "volume held elsewhere: asking its holder to hand over");
      publishLeaseMessage(this.options.publisher, this.options.prefix, request).catch((error: unknown) => {
        logger.warn({ err: error, volumeId }, "could not ask the holder to hand over; waiting for its lease to end");
        this.#waiting.delete(requestId);
        clearTimeout(timer);
        resolve(undefined);
      });
    });
  }

  #onMessage(text: string): void {
    const message = parseLeaseMessage(text);
    if (message === undefined) return;
    const held = this.options.heldToken(message.volumeId);
    switch (message.kind) {
      case "handoff-reply":
        this.#waiting.get(message.requestId)?.(message);
        return;
      case "handoff":
        if (held === message.fencingToken) void this.#handOver(message);
        return;
      case "fence":
        if (held !== undefined && held <= message.fencingToken) this.options.engines.fence(message.volumeId, held, message.reason);
        return;
      case "commit":
        if (held === message.fencingToken) void this.#commit(message);
        return;
      case "commit-reply":
        return;
    }
  }

  /** A snapshot is being taken of a volume this gateway holds: commit, then say so. */
  async #commit(request: CommitRequest): Promise<void> {
    const { logger } = this.options;
    let reply: CommitReply;
    try {
      await this.options.engines.commitHeld(request.volumeId, request.fencingToken);
      reply = { kind: "commit-reply", requestId: request.requestId, volumeId: request.volumeId, outcome: "committed" };
    } catch (error) {
      logger.warn({ err: error, volumeId: request.volumeId }, "commit asked for a snapshot failed");
      const reason = error instanceof Error ? error.message : String(error);
      reply = { kind: "commit-reply", requestId: request.requestId, volumeId: request.volumeId, outcome: "refused", reason };
    }
    await publishLeaseMessage(this.options.publisher, this.options.prefix, reply).catch((error: unknown) =>
      logger.warn({ err: error, volumeId: request.volumeId }, "could not answer a commit request (the snapshot waits until its timeout)"),
    );
  }

  async #handOver(request: HandoffRequest): Promise<void> {
    const { logger } = this.options;
    let reply: HandoffReply;
    try {
      const result = await this.options.engines.handOff(request.volumeId, request.fencingToken, request.requester);
      reply = { kind: "handoff-reply", requestId: request.requestId, volumeId: request.volumeId, ...result };
    } catch (error) {
      logger.error({ err: error, volumeId: request.volumeId }, "handing a volume over failed");
      reply = { kind: "handoff-reply", requestId: request.requestId, volumeId: request.volumeId, outcome: "refused", reason: "the holder failed to hand over" };
    }
    await publishLeaseMessage(this.options.publisher, this.options.prefix, reply).catch((error: unknown) =>
      logger.warn({ err: error, volumeId: request.volumeId }, "could not answer a handoff request (the requester sees the lease go)"),
    );
  }
}
