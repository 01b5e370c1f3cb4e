/**
 * POST /api/v1/volumes/:name/detach, as the CLI calls it: a free volume is "not-attached" (200), a
 * holder that does not answer within the handoff timeout is a 409 whose message points at force, and
 * force takes the lease away (200 "forced"). The holder's side is the control verb's tests' business.
 */
import { acquireLease, findLiveLease } from "@stratus/db";
import { createVolume, issueApiToken } from "@stratus/control";
import { describe, expect, it } from "vitest";
import * as detachRoute from "@/app/api/v1/volumes/[name]/detach/route";
import { makeRequest, useSignedInUser } from "./testing";

const HOLDER = { gatewayId: "gw-1", gatewayRun: "run-1", deviceCredentialId: "dev_x", holderName: "laptop", clientAddress: "10.0.0.2" };

describe("REST POST /api/v1/volumes/:name/detach", () => {
  const user = useSignedInUser("detach@example.com");

  it("reports not attached, refuses after the timeout, and force-detaches", async () => {
    const { t, userId } = user();
    t.runtime.config.handoffTimeoutMs = 300; // no gateway answers in this test
    const db = t.runtime.database.db;
    const volume = await createVolume(
      { runtime: t.runtime, actor: { userId, via: "session", scope: "write" } },
      { name: "rest-disk", size: "1M", chunkSize: "64K" },
    );
    const { secret } = await issueApiToken(db, userId, { name: "cli", scope: "write", expiresAt: null });
    const detach = (body: unknown) =>
      detachRoute.POST(makeRequest({ kind: "token", secret }, "POST", "/api/v1/volumes/rest-disk/detach", body), {
        params: Promise.resolve({ name: "rest-disk" }),
      });

    const free = await detach(undefined);
    expect([free.status, await free.json()]).toEqual([200, expect.objectContaining({ outcome: "not-attached", message: "volume rest-disk is not attached" })]);

    await acquireLease(db, { volumeId: volume.id, holder: HOLDER, ttlMs: 60_000, now: new Date() });
    const refused = await detach({});
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(
      /^laptop \(10\.0\.0\.2\) since .* UTC did not let go of volume rest-disk within 300 ms: force detach fences it/,
    );

    const forced = await detach({ force: true });
    expect([forced.status, await forced.json()]).toEqual([200, expect.objectContaining({ outcome: "forced", volumeId: volume.id })]);
    expect(await findLiveLease(db, volume.id, new Date())).toBeUndefined();

    expect((await detach({ force: "yes" })).status).toBe(400);
  });
});
