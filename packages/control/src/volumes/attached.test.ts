import { DATABASE_KINDS } from "@stratus/db/testing";
import { acquireLease, insertAccount, releaseLease, type UserRow } from "@stratus/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceContext } from "../context";
import { openTestRuntime, type TestRuntime } from "../testing";
import { deleteVolume } from "./delete";
import { createVolume, getVolume, resizeVolume } from "./volumes";

const MiB = 2 ** 20;

describe.each(DATABASE_KINDS)("delete and shrink under a lease on %s", (kind) => {
  let t: TestRuntime;
  let alice: UserRow;
  const as = (user: UserRow): ServiceContext => ({ runtime: t.runtime, actor: { userId: user.id, via: "session", scope: "write" } });

  beforeAll(async () => {
    t = await openTestRuntime(kind);
    alice = await insertAccount(t.runtime.database.db, { email: "alice@example.com", passwordHash: "scrypt$x", isAdmin: false });
  });
  afterAll(() => t?.dispose());

  it("refuses both while a device holds the volume, naming it, and allows them once it let go", async () => {
    const volume = await createVolume(as(alice), { name: "disk", size: 16 * MiB, chunkSize: MiB });
    const holder = { gatewayId: "gw-1", gatewayRun: "run-1", deviceCredentialId: "dev_x", holderName: "laptop", clientAddress: "10.0.0.2" };
    const taken = await acquireLease(t.runtime.database.db, { volumeId: volume.id, holder, ttlMs: 60_000, now: new Date() });
    expect(taken.kind).toBe("acquired");
    expect((await getVolume(as(alice), { name: "disk" })).lease).toMatchObject({ holder: "laptop", clientAddress: "10.0.0.2", gatewayId: "gw-1" });

    await expect(resizeVolume(as(alice), { name: "disk", size: 8 * MiB, confirmShrink: "disk" })).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringMatching(/^volume disk is attached by laptop \(10\.0\.0\.2\) since .* UTC; detach it before shrinking it$/),
    });
    await expect(deleteVolume(as(alice), { name: "disk" })).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringContaining("detach it before deleting it"),
    });
    // Growing is harmless under a writer; its clients see the new size after a reconnect.
    const grown = await resizeVolume(as(alice), { name: "disk", size: 32 * MiB });
    expect([grown.volume.sizeBytes, grown.reconnectNeeded]).toEqual([32 * MiB, true]);

    expect(await releaseLease(t.runtime.database.db, volume.id, taken.lease.fencingToken)).toBe(true);
    expect((await resizeVolume(as(alice), { name: "disk", size: 48 * MiB })).reconnectNeeded).toBe(false);
    await resizeVolume(as(alice), { name: "disk", size: 8 * MiB, confirmShrink: "disk" });
    expect((await getVolume(as(alice), { name: "disk" })).lease).toBeNull();
    await deleteVolume(as(alice), { name: "disk" });
  });
});
