/**
 * detachVolume against real Postgres/PGlite and Redis. The holder is simulated at the level this verb
 * talks to: a Redis subscriber on the lease channel that answers handoff requests (and deletes its
 * lease row, as a gateway does) or refuses them, and records fence notices. The gateway's own side of
 * the contract is tested with the gateway.
 */
import { DATABASE_KINDS } from "@stratus/db/testing";
import { acquireLease, findLiveLease, findVolumeById, insertAccount, listVolumeActivityRows, releaseLease, type UserRow } from "@stratus/db";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Runtime, ServiceContext } from "../context";
import { openTestRuntime, type TestRuntime } from "../testing";
import { detachVolume } from "./detach";
import { parseLeaseMessage, publishLeaseMessage, volumeLeaseChannel, type LeaseMessage } from "./lease-channel";
import { createVolume } from "./volumes";

const MiB = 2 ** 20;
const HOLDER = { gatewayId: "gw-1", gatewayRun: "run-1", deviceCredentialId: "dev_x", holderName: "laptop", clientAddress: "10.0.0.2" };

type Behaviour = "release" | "release-silently" | "refuse" | "ignore";

describe.each(DATABASE_KINDS)("detachVolume on %s", (kind) => {
  let t: TestRuntime;
  let alice: UserRow;
  let bob: UserRow;
  let holder: Redis;
  let behaviour: Behaviour = "ignore";
  const seen: LeaseMessage[] = [];
  let volumes = 0;

  const as = (user: UserRow, options: { scope?: "read" | "write"; timeoutMs?: number } = {}): ServiceContext => {
    const runtime: Runtime = { ...t.runtime, config: { ...t.runtime.config, handoffTimeoutMs: options.timeoutMs ?? 10_000 } };
    return { runtime, actor: { userId: user.id, via: "session", scope: options.scope ?? "write" } };
  };

  beforeAll(async () => {
    t = await openTestRuntime(kind);
    const db = t.runtime.database.db;
    alice = await insertAccount(db, { email: "alice@example.com", passwordHash: "scrypt$x", isAdmin: false });
    bob = await insertAccount(db, { email: "bob@example.com", passwordHash: "scrypt$x", isAdmin: false });
    // The simulated holder: what a gateway serving the volume does with the channel's messages.
    holder = t.runtime.redis.duplicate();
    holder.on("message", (_channel: string, text: string) => {
      const message = parseLeaseMessage(text);
      if (!message) return;
      seen.push(message);
      if (message.kind !== "handoff" || behaviour === "ignore") return;
      void (async () => {
        const base = { kind: "handoff-reply" as const, requestId: message.requestId, volumeId: message.volumeId };
        if (behaviour === "refuse") {
          await publishLeaseMessage(t.runtime.redis, t.runtime.config.prefix, { ...base, outcome: "refused", reason: "a flush is failing" });
          return;
        }
        await releaseLease(db, message.volumeId, message.fencingToken);
        if (behaviour === "release") await publishLeaseMessage(t.runtime.redis, t.runtime.config.prefix, { ...base, outcome: "released" });
      })();
    });
    await holder.subscribe(volumeLeaseChannel(t.runtime.config.prefix));
  });
  afterEach(() => {
    seen.length = 0;
    behaviour = "ignore";
  });
  afterAll(async () => {
    holder?.disconnect();
    await t?.dispose();
  });

  /** A fresh volume of alice's, held by the simulated device; returns it with the lease's token. */
  async function heldVolume(): Promise<{ id: string; name: string; token: number }> {
    const name = `disk-${++volumes}`;
    const volume = await createVolume(as(alice), { name, size: 4 * MiB, chunkSize: MiB });
    const taken = await acquireLease(t.runtime.database.db, { volumeId: volume.id, holder: HOLDER, ttlMs: 60_000, now: new Date() });
    if (taken.kind !== "acquired") throw new Error("the test volume should be free");
    return { id: volume.id, name, token: taken.lease.fencingToken };
  }
  /** The channel's messages about one volume (a reply to an earlier test may still be arriving). */
  const about = (volumeId: string) => seen.filter((message) => message.volumeId === volumeId);
  const detachActivity = async (volumeId: string) =>
    (await listVolumeActivityRows(t.runtime.database.db, alice.id, volumeId)).filter((entry) => entry.action === "volume.detach");

  it("says a free volume is not attached, cooperatively or by force, and records nothing", async () => {
    const volume = await createVolume(as(alice), { name: "free", size: 4 * MiB, chunkSize: MiB });
    for (const force of [false, true]) {
      expect(await detachVolume(as(alice), { name: "free", force })).toEqual({
        volumeId: volume.id,
        name: "free",
        outcome: "not-attached",
        holder: null,
        message: "volume free is not attached",
      });
    }
    expect(about(volume.id)).toEqual([]);
    expect((await findVolumeById(t.runtime.database.db, volume.id))!.fencingToken).toBe(0);
    expect(await detachActivity(volume.id)).toEqual([]);
  });

  it("asks the holder to hand over and returns once it let go", async () => {
    const volume = await heldVolume();
    behaviour = "release";
    const outcome = await detachVolume(as(alice), { name: volume.name });
    expect(outcome).toMatchObject({ outcome: "released", holder: expect.stringMatching(/^laptop \(10\.0\.0\.2\) since .* UTC$/) });
    expect(about(volume.id)[0]).toMatchObject({ kind: "handoff", volumeId: volume.id, fencingToken: volume.token, requester: "detach from the dashboard" });
    expect(await findLiveLease(t.runtime.database.db, volume.id, new Date())).toBeUndefined();
    // Cooperative: the token is not raised, the holder committed and gave it back.
    expect((await findVolumeById(t.runtime.database.db, volume.id))!.fencingToken).toBe(volume.token);
    expect(await detachActivity(volume.id)).toEqual([expect.objectContaining({ via: "session", detail: { force: false, holder: outcome.holder } })]);
  });

  it("notices the lease row gone even when the reply is lost", async () => {
    const volume = await heldVolume();
    behaviour = "release-silently";
    expect((await detachVolume(as(alice), { name: volume.name })).outcome).toBe("released");
    expect(about(volume.id).map((m) => m.kind)).toEqual(["handoff"]);
  });

  it("reports the holder's refusal as a conflict with its reason, and the volume stays held", async () => {
    const volume = await heldVolume();
    behaviour = "refuse";
    await expect(detachVolume(as(alice), { name: volume.name })).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringMatching(new RegExp(`^laptop \\(10\\.0\\.0\\.2\\) since .* UTC refused to let go of volume ${volume.name}: a flush is failing$`)),
    });
    expect((await findLiveLease(t.runtime.database.db, volume.id, new Date()))?.fencingToken).toBe(volume.token);
    expect(await detachActivity(volume.id)).toEqual([]);
  });

  it("gives up on a silent holder after the handoff timeout, pointing at force", async () => {
    const volume = await heldVolume();
    const started = Date.now();
    await expect(detachVolume(as(alice, { timeoutMs: 400 }), { name: volume.name })).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringContaining(
        `did not let go of volume ${volume.name} within 400 ms: force detach fences it without its cooperation (its unflushed writes are kept aside as an orphan set)`,
      ),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect((await findLiveLease(t.runtime.database.db, volume.id, new Date()))?.fencingToken).toBe(volume.token);
  });

  it("force: takes the lease away, raises the token and tells the holder to stop", async () => {
    const volume = await heldVolume();
    const outcome = await detachVolume(as(alice), { name: volume.name, force: true });
    expect(outcome).toMatchObject({ outcome: "forced", message: expect.stringContaining("kept aside as an orphan set") });
    expect(await findLiveLease(t.runtime.database.db, volume.id, new Date())).toBeUndefined();
    expect((await findVolumeById(t.runtime.database.db, volume.id))!.fencingToken).toBe(volume.token + 1);
    await expect
      .poll(() => about(volume.id))
      .toEqual([{ kind: "fence", volumeId: volume.id, fencingToken: volume.token, reason: "force detached by alice@example.com through the dashboard" }]);
    expect(await detachActivity(volume.id)).toEqual([expect.objectContaining({ detail: { force: true, holder: outcome.holder } })]);
  });

  it("is refused to a read-only token and hides other people's volumes", async () => {
    const volume = await heldVolume();
    await expect(detachVolume(as(alice, { scope: "read" }), { name: volume.name, force: true })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(detachVolume(as(bob), { name: volume.name, force: true })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect((await findLiveLease(t.runtime.database.db, volume.id, new Date()))?.fencingToken).toBe(volume.token);
  });
});
