/**
 * The account's activity view against real Postgres/PGlite and Redis: sign-in and sign-out, attach and
 * detach rows as the gateway records them, and the lock verb (the only verb this view added a REST
 * route and a button for): what it refuses, what it records, and that each account sees only its own.
 */
import { DATABASE_KINDS } from "@stratus/db/testing";
import { insertAccount, type UserRow } from "@stratus/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceContext } from "../context";
import { unlockGrantKey, volumeLockedChannel } from "../keys/unlock-grants";
import { openTestRuntime, type TestRuntime } from "../testing";
import { createVolume, lockVolume, unlockVolume } from "../volumes/volumes";
import { listAccountActivity, recordAttachActivity, recordSignIn, recordSignOut } from "./account-activity";

const MiB = 2 ** 20;
const PASSPHRASE = "a long enough passphrase";

describe.each(DATABASE_KINDS)("account activity on %s", (kind) => {
  let t: TestRuntime;
  let alice: UserRow;
  let bob: UserRow;
  const as = (user: UserRow, scope: "read" | "write" = "write"): ServiceContext => ({
    runtime: t.runtime,
    actor: { userId: user.id, via: "session", scope },
    requestMeta: { ip: "10.1.2.3" },
  });
  const actions = async (user: UserRow) => (await listAccountActivity(as(user))).map((entry) => entry.action);

  beforeAll(async () => {
    t = await openTestRuntime(kind);
    const db = t.runtime.database.db;
    alice = await insertAccount(db, { email: "alice@example.com", passwordHash: "scrypt$x", isAdmin: false });
    bob = await insertAccount(db, { email: "bob@example.com", passwordHash: "scrypt$x", isAdmin: false });
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it("lists sign-ins, sign-outs, attaches, detaches and volume verbs, newest first, per account", async () => {
    await recordSignIn({ runtime: t.runtime, requestMeta: { ip: "10.9.9.9", userAgent: "Firefox" } }, alice.id);
    const volume = await createVolume(as(alice), { name: "seen", size: 4 * MiB, chunkSize: MiB });
    const attach = { volumeId: volume.id, volumeName: "seen", ownerId: alice.id, holder: "laptop", deviceCredentialId: "dev_1", clientAddress: "10.0.0.7" };
    await recordAttachActivity(t.runtime.database.db, "attached", attach);
    await recordAttachActivity(t.runtime.database.db, "detached", { ...attach, deviceCredentialId: null, holder: "local", clientAddress: null });
    await recordSignOut(t.runtime, alice.id);

    const entries = await listAccountActivity(as(alice));
    expect(entries.map((entry) => [entry.action, entry.volumeName, entry.via])).toEqual([
      ["account.signout", null, "session"],
      ["volume.detached", "seen", "local"],
      ["volume.attached", "seen", "device"],
      ["volume.create", "seen", "session"],
      ["account.signin", null, "session"],
    ]);
    expect(entries[2]!.detail).toEqual({ holder: "laptop", deviceCredentialId: "dev_1" });
    expect(entries[4]!.detail).toEqual({ userAgent: "Firefox" });
    expect(await actions(bob)).toEqual([]);
  });

  it("locks a passphrase-only volume, says when it was already locked, and refuses auto-unlock", async () => {
    const safe = await createVolume(as(bob), { name: "safe", size: 4 * MiB, chunkSize: MiB, passphrase: PASSPHRASE, autoUnlock: false });
    const grant = unlockGrantKey(t.runtime.config.prefix, safe.id);
    expect(await t.runtime.redis.exists(grant)).toBe(1);
    expect((await lockVolume(as(bob), { name: "safe" })).wasUnlocked).toBe(true);
    // The create left a grant; the lock above removed it. Unlock again, then lock and watch the channel.
    await unlockVolume(as(bob), { name: "safe", passphrase: PASSPHRASE });
    const subscriber = t.runtime.redis.duplicate();
    const published: string[] = [];
    subscriber.on("message", (_channel: string, volumeId: string) => published.push(volumeId));
    await subscriber.subscribe(volumeLockedChannel(t.runtime.config.prefix));
    try {
      const locked = await lockVolume(as(bob), { name: "safe" });
      expect(locked.wasUnlocked).toBe(true);
      expect(locked.volume.unlocked).toBe(false);
      expect(locked.message).toMatch(/^locked volume safe: its gateway commits and closes it and drops its cached data; the next attach needs the passphrase/);
      expect(await t.runtime.redis.exists(grant)).toBe(0);
      const again = await lockVolume(as(bob), { name: "safe" });
      expect([again.wasUnlocked, again.message]).toEqual([false, "volume safe was already locked: the next attach needs the passphrase (volume unlock)"]);
      await expect.poll(() => published.filter((id) => id === locked.volume.id).length).toBe(2);
    } finally {
      subscriber.disconnect();
    }
    // Two real locks (the first after create, one after the unlock); the no-op records nothing.
    expect((await actions(bob)).filter((action) => action === "volume.lock")).toHaveLength(2);

    await createVolume(as(bob), { name: "auto", size: 4 * MiB, chunkSize: MiB, passphrase: PASSPHRASE });
    await expect(lockVolume(as(bob), { name: "auto" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/^volume auto has auto-unlock: gateways open it with the master key, so it cannot be locked/),
    });
    await expect(lockVolume(as(bob, "read"), { name: "safe" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(lockVolume(as(alice), { name: "safe" })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});
