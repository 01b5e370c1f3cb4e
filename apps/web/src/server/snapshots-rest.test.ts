/**
 * The snapshot and clone REST routes as the CLI and scripts call them: take a snapshot (201, 409 for a
 * name in use), list it with its export name, clone it under the parent's path (201, the clone names
 * its origin; 400 without a snapshot), delete it (404 the second time). The verbs' storage and GC
 * behaviour is the control package's and the e2e tests' business.
 */
import { createVolume, lockVolume } from "@stratus/control";
import { describe, expect, it } from "vitest";
import * as cloneRoute from "@/app/api/v1/volumes/[name]/clone/route";
import * as snapshotRoute from "@/app/api/v1/volumes/[name]/snapshots/[snapshot]/route";
import * as snapshotsRoute from "@/app/api/v1/volumes/[name]/snapshots/route";
import { makeRequest, useSignedInUser } from "./testing";

describe("REST snapshots and clones", () => {
  const user = useSignedInUser("snapshots@example.com");

  it("takes, lists, clones and deletes a snapshot", async () => {
    const { t, userId, caller } = user();
    const ctx = { runtime: t.runtime, actor: { userId, via: "session" as const, scope: "write" as const } };
    await createVolume(ctx, { name: "base", size: "1M", chunkSize: "64K" });
    const params = { params: Promise.resolve({ name: "base" }) };
    const take = (snapshot: string) => snapshotsRoute.POST(makeRequest(caller, "POST", "/api/v1/volumes/base/snapshots", { snapshot }), params);

    const taken = await take("monday");
    expect(taken.status).toBe(201);
    expect(await taken.json()).toMatchObject({ name: "monday", volumeName: "base", exportName: "base@monday", sizeBytes: 2 ** 20 });
    const again = await take("monday");
    expect([again.status, ((await again.json()) as { error: { code: string; field: string } }).error]).toEqual([
      409,
      expect.objectContaining({ code: "CONFLICT", field: "snapshot" }),
    ]);

    const listed = await snapshotsRoute.GET(makeRequest(caller, "GET", "/api/v1/volumes/base/snapshots"), params);
    expect(((await listed.json()) as { snapshots: Array<{ exportName: string }> }).snapshots.map((s) => s.exportName)).toEqual(["base@monday"]);

    const clone = (body: unknown) => cloneRoute.POST(makeRequest(caller, "POST", "/api/v1/volumes/base/clone", body), params);
    const cloned = await clone({ snapshot: "monday", name: "copy" });
    expect(cloned.status).toBe(201);
    expect(await cloned.json()).toMatchObject({
      name: "copy",
      sizeBytes: 2 ** 20,
      autoUnlock: true,
      clonedFrom: { volumeName: "base", snapshotName: "monday" },
    });
    const noSnapshot = await clone({ name: "copy2" });
    expect([noSnapshot.status, ((await noSnapshot.json()) as { error: { code: string } }).error.code]).toEqual([400, "BAD_REQUEST"]);
    expect((await clone({ snapshot: "tuesday", name: "copy3" })).status).toBe(404);

    const remove = () =>
      snapshotRoute.DELETE(makeRequest(caller, "DELETE", "/api/v1/volumes/base/snapshots/monday"), {
        params: Promise.resolve({ name: "base", snapshot: "monday" }),
      });
    const removed = await remove();
    expect([removed.status, ((await removed.json()) as { message: string }).message]).toEqual([200, expect.stringMatching(/^deleted snapshot base@monday/)]);
    expect((await remove()).status).toBe(404);
  });
});

describe("REST clone of a parent without auto-unlock", () => {
  const user = useSignedInUser("clones@example.com");

  it("clones an unlocked parent with the clone's own passphrase; a locked one needs the parent's", async () => {
    const { t, userId, caller } = user();
    const ctx = { runtime: t.runtime, actor: { userId, via: "session" as const, scope: "write" as const } };
    // createVolume leaves an unlock grant: the parent is unlocked.
    await createVolume(ctx, { name: "safe", size: "1M", chunkSize: "64K", passphrase: "the parent passphrase", autoUnlock: false });
    const params = { params: Promise.resolve({ name: "safe" }) };
    expect((await snapshotsRoute.POST(makeRequest(caller, "POST", "/api/v1/volumes/safe/snapshots", { snapshot: "s1" }), params)).status).toBe(201);
    const clone = (body: object) => cloneRoute.POST(makeRequest(caller, "POST", "/api/v1/volumes/safe/clone", { snapshot: "s1", ...body }), params);

    const own = await clone({ name: "c1", passphrase: "the clone's own passphrase" });
    expect([own.status, await own.json()]).toEqual([201, expect.objectContaining({ name: "c1", autoUnlock: false, unlocked: true, hasPassphrase: true })]);

    await lockVolume(ctx, { name: "safe" });
    const refused = await clone({ name: "c2", passphrase: "the clone's own passphrase" });
    expect([refused.status, ((await refused.json()) as { error: { message: string } }).error.message]).toEqual([403, "wrong passphrase for volume safe"]);
    const withParent = await clone({ name: "c3", passphrase: "the clone's own passphrase", parentPassphrase: "the parent passphrase" });
    expect(withParent.status).toBe(201);
    // The same passphrase for both opens a locked parent too.
    expect((await clone({ name: "c4", passphrase: "the parent passphrase" })).status).toBe(201);
  });
});
