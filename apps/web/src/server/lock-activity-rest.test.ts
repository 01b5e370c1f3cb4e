/**
 * POST /api/v1/volumes/:name/lock and GET /api/v1/activity, as the CLI calls them: a lock answers with
 * its sentence (or the auto-unlock refusal as a 400), and the account's activity lists it with the
 * volume's name. The verbs' details are the control package's tests' business.
 */
import { createVolume } from "@stratus/control";
import { describe, expect, it } from "vitest";
import * as activityRoute from "@/app/api/v1/activity/route";
import * as lockRoute from "@/app/api/v1/volumes/[name]/lock/route";
import { makeRequest, useSignedInUser } from "./testing";

describe("REST lock and account activity", () => {
  const user = useSignedInUser("lock@example.com");

  it("locks a passphrase-only volume, refuses an auto-unlock one, and lists both in the activity", async () => {
    const { t, userId, caller } = user();
    const ctx = { runtime: t.runtime, actor: { userId, via: "session" as const, scope: "write" as const } };
    await createVolume(ctx, { name: "safe", size: "1M", chunkSize: "64K", passphrase: "a long enough passphrase", autoUnlock: false });
    await createVolume(ctx, { name: "auto", size: "1M", chunkSize: "64K" });
    const lock = (name: string) => lockRoute.POST(makeRequest(caller, "POST", `/api/v1/volumes/${name}/lock`), { params: Promise.resolve({ name }) });

    const locked = await lock("safe");
    expect([locked.status, await locked.json()]).toEqual([
      200,
      expect.objectContaining({ wasUnlocked: true, message: expect.stringMatching(/^locked volume safe: .*the next attach needs the passphrase/) }),
    ]);
    const refused = await lock("auto");
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/^volume auto has auto-unlock/);
    expect((await lock("nothing")).status).toBe(404);

    const listed = await activityRoute.GET(makeRequest(caller, "GET", "/api/v1/activity"));
    const { activity } = (await listed.json()) as { activity: Array<{ action: string; volumeName: string | null }> };
    expect(activity.map((entry) => `${entry.action} ${entry.volumeName}`)).toEqual(["volume.lock safe", "volume.create auto", "volume.create safe"]);
    expect((await activityRoute.GET(makeRequest({ kind: "anonymous" }, "GET", "/api/v1/activity"))).status).toBe(401);
  });
});
