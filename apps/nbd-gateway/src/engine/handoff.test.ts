/**
 * Cooperative handoff and fencing between devices, on one gateway and across two (their lease channel
 * on the test Redis): the holder's connections are told to finish, its acknowledged writes are
 * committed, the lease moves with the next token; a holder that cannot commit refuses with its
 * reason; a force-detach notice fences at once; a holder paused past its lease never acknowledges
 * another FLUSH.
 */
import { acquireLease, findLiveLease, loadChunkMap, releaseLease } from "@stratus/db";
import { MemoryObjectStore, StorageError } from "@stratus/storage";
import { Redis } from "ioredis";
import { publishLeaseMessage } from "@stratus/control";
import { afterEach, describe, expect, it } from "vitest";
import type { OpenedExport } from "../server/export-registry";
import { waitFor } from "../testing/nbd-tools";
import { MiB, TTL, useLeaseFixture, type TestGateway } from "../testing/lease-fixture";
import { TEST_REDIS, uniqueQueuePrefix } from "../testing/test-redis";
import { HandoffCoordinator } from "./handoff-coordinator";

const anotherHolder = { gatewayId: "gw-two", gatewayRun: "r", deviceCredentialId: "dev_phone", holderName: "phone", clientAddress: null };

describe("volume handoff", () => {
  const fx = useLeaseFixture("stratus-handoff-");
  const { gateway, volume, device, tokenOf, open } = fx;
  const connections: Redis[] = [];

  afterEach(() => {
    for (const connection of connections.splice(0)) connection.disconnect();
  });

  /** Behaves as an NBD connection does when told to hand over: it ends, and releases the export. */
  function disconnectsOnHandoff(opened: OpenedExport): { told: boolean } {
    const seen = { told: false };
    opened.onHandoff?.(() => {
      seen.told = true;
      void opened.release();
    });
    return seen;
  }

  /** A gateway with its end of the lease channel on the test Redis, under `prefix`. */
  async function channelGateway(gatewayId: string, prefix: string, options: { heldWaitMs?: number } = {}): Promise<TestGateway> {
    const publisher = new Redis(TEST_REDIS);
    const subscriber = new Redis(TEST_REDIS);
    connections.push(publisher, subscriber);
    const channel: { coordinator?: HandoffCoordinator } = {};
    const made = gateway(gatewayId, {
      heldWaitMs: options.heldWaitMs ?? 0,
      askHolder: (volumeId, lease, requester) => channel.coordinator!.ask(volumeId, lease, requester),
    });
    const coordinator = new HandoffCoordinator({
      publisher,
      subscriber,
      prefix,
      identity: made.leases.identity,
      engines: made.engines,
      heldToken: (volumeId) => made.leases.heldTokens().get(volumeId),
      timeoutMs: 10_000,
      logger: fx.logger,
    });
    await coordinator.start();
    channel.coordinator = coordinator;
    return made;
  }

  /** Lets a waiting open's 100 ms polls run on its gateway's manual clock until it settles. */
  async function pumpUntilSettled<T>(g: TestGateway, pending: Promise<T>): Promise<T> {
    let settled = false;
    const watched = pending.finally(() => (settled = true));
    while (!settled) {
      await waitFor(() => settled || g.clock.pendingTimers >= 2, "the open to wait or finish");
      if (!settled) await g.clock.advance(100);
    }
    return watched;
  }

  it("hands a volume to another device on the same gateway: connections told, writes committed, token + 1", async () => {
    const row = await volume("same-gateway", "local");
    const g1 = gateway("gw-one");
    const laptop = g1.engines.forScope(device("dev_laptop", "laptop"));
    const first = await open(laptop, "same-gateway");
    const second = await open(laptop, "same-gateway");
    const told = [disconnectsOnHandoff(first), disconnectsOnHandoff(second)];
    await first.device.write(0, Buffer.alloc(4096, 5));
    await second.device.write(MiB, Buffer.alloc(4096, 6));

    const phone = await open(g1.engines.forScope(device("dev_phone", "phone")), "same-gateway");
    expect(told.map((t) => t.told)).toEqual([true, true]);
    expect(await findLiveLease(fx.database.db, row.id, new Date())).toMatchObject({ deviceCredentialId: "dev_phone", holderName: "phone", fencingToken: 2 });
    // The laptop's writes (never flushed) were committed before the lease moved.
    expect((await loadChunkMap(fx.database.db, row.id)).chunks.size).toBe(2);
    const seen = Buffer.alloc(4096);
    await phone.device.read(MiB, seen);
    expect(seen.every((byte) => byte === 6)).toBe(true);

    // The laptop asking again now is a handoff the other way.
    const back = open(laptop, "same-gateway");
    disconnectsOnHandoff(phone);
    await back.then((opened) => opened.release());
    expect(await tokenOf(row.id)).toBe(3);
  });

  it("asks a holder on another gateway over the lease channel, which hands over", async () => {
    const prefix = uniqueQueuePrefix();
    const row = await volume("across", "local");
    const g1 = await channelGateway("gw-one", prefix);
    const g2 = await channelGateway("gw-two", prefix, { heldWaitMs: 10_000 });
    const held = await open(g1.engines.forScope(device("dev_laptop", "laptop")), "across");
    const told = disconnectsOnHandoff(held);
    await held.device.write(2 * MiB, Buffer.alloc(4096, 9));

    const taken = await pumpUntilSettled(g2, open(g2.engines.forScope(device("dev_phone", "phone")), "across"));
    expect(told.told).toBe(true);
    expect(await findLiveLease(fx.database.db, row.id, new Date())).toMatchObject({ gatewayId: "gw-two", holderName: "phone", fencingToken: 2 });
    const seen = Buffer.alloc(4096);
    await taken.device.read(2 * MiB, seen);
    expect(seen.every((byte) => byte === 9)).toBe(true);
    await taken.release();
  });

  it("refuses a handoff whose final commit fails, with the reason, and keeps serving", async () => {
    const row = await volume("cannot-commit", "local");
    const failing = new MemoryObjectStore();
    failing.put = () => Promise.reject(new StorageError("EIO", "bucket refuses writes"));
    const g1 = gateway("gw-one", { store: failing, handoffTimeoutMs: 5_000 });
    const held = await open(g1.engines.forScope(device("dev_laptop", "laptop")), "cannot-commit");
    // A connection told to hand over leaves; the close's commit fails, so the engine keeps the data.
    disconnectsOnHandoff(held);
    await held.device.write(0, Buffer.alloc(4096, 3));

    await expect(g1.engines.forScope(device("dev_phone", "phone")).open("cannot-commit")).rejects.toThrow(
      /in use by laptop since .*: the holder could not commit its data \(.*bucket refuses writes.*\); it keeps the volume/,
    );
    expect(await findLiveLease(fx.database.db, row.id, new Date())).toMatchObject({ holderName: "laptop", fencingToken: 1 });
    // The laptop comes back to the very engine that still holds its data.
    const again = await open(g1.engines.forScope(device("dev_laptop", "laptop")), "cannot-commit");
    const seen = Buffer.alloc(4096);
    await again.device.read(0, seen);
    expect(seen.every((byte) => byte === 3)).toBe(true);
    g1.engines.fence(row.id, 1, "test over: nothing to commit to");
  });

  it("stops serving at once on a force-detach notice", async () => {
    const prefix = uniqueQueuePrefix();
    const row = await volume("forced", "local");
    const g1 = await channelGateway("gw-one", prefix);
    const held = await open(g1.engines.forScope(device("dev_laptop", "laptop")), "forced");
    let revoked = false;
    held.onRevoked?.(() => (revoked = true));
    await held.device.write(0, Buffer.alloc(4096, 1));

    // What a force detach does: the token moves on and the lease row goes, then the notice.
    const forced = await acquireLease(fx.database.db, { volumeId: row.id, holder: anotherHolder, ttlMs: TTL, now: new Date(), force: true });
    await releaseLease(fx.database.db, row.id, forced.lease.fencingToken);
    const publisher = new Redis(TEST_REDIS);
    connections.push(publisher);
    await publishLeaseMessage(publisher, prefix, { kind: "fence", volumeId: row.id, fencingToken: 1, reason: "force detached in a test" });
    await waitFor(() => revoked, "the holder to be fenced");
    await expect(held.device.flush()).rejects.toThrow();
    // A notice about an older token than the one held fences nothing.
    const again = await open(g1.engines.forScope(device("dev_laptop", "laptop")), "forced");
    expect(await tokenOf(row.id)).toBe(3);
    let revokedAgain = false;
    again.onRevoked?.(() => (revokedAgain = true));
    await publishLeaseMessage(publisher, prefix, { kind: "fence", volumeId: row.id, fencingToken: 1, reason: "stale" });
    await publisher.ping(); // the notice went out before this answer; give the subscriber its turn
    await new Promise((resolve) => setImmediate(resolve));
    await again.device.flush();
    expect(revokedAgain).toBe(false);
    await again.release();
  });

  it("never acknowledges a FLUSH after a pause in which the lease was forced away", async () => {
    const row = await volume("paused", "local");
    const g1 = gateway("gw-one");
    const held = await open(g1.engines.forScope(device("dev_laptop", "laptop")), "paused");
    await held.device.write(0, Buffer.alloc(4096, 2));
    await held.device.flush();

    // As SIGSTOP: no heartbeat runs while time passes and another device forces the lease away.
    await g1.leases.stop();
    await g1.clock.advance(TTL);
    const forced = await acquireLease(fx.database.db, { volumeId: row.id, holder: anotherHolder, ttlMs: TTL, now: new Date(), force: true });
    expect(forced.kind).toBe("acquired");
    await held.device.write(4096, Buffer.alloc(4096, 4));
    await expect(held.device.flush()).rejects.toThrow(/lost the volume's lease/);
  });
});
