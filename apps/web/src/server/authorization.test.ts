/**
 * Authorization across every tRPC procedure and every REST route, on PGlite and PostgreSQL: user B, an
 * anonymous caller, a read-only token (for writes), and revoked or expired tokens never reach user A's
 * volumes or tokens. Routers are driven through createCaller with contexts built from real Requests (the
 * same code path as /api/trpc), REST handlers with real Request objects.
 */
import { recordOrphanSet } from "@stratus/db";
import { DATABASE_KINDS } from "@stratus/db/testing";
import { createDeviceCredential, issueApiToken, signUp, createVolume, type CreatedApiToken, type ServiceContext } from "@stratus/control";
import { openTestRuntime, type TestRuntime } from "@stratus/control/testing";
import { TRPCError } from "@trpc/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as volumesRoute from "@/app/api/v1/volumes/route";
import * as volumeRoute from "@/app/api/v1/volumes/[name]/route";
import * as unlockRoute from "@/app/api/v1/volumes/[name]/unlock/route";
import * as passphraseRoute from "@/app/api/v1/volumes/[name]/passphrase/route";
import * as progressRoute from "@/app/api/v1/volumes/[name]/delete-progress/route";
import * as recoverRoute from "@/app/api/v1/recover/route";
import * as healthRoute from "@/app/api/v1/health/route";
import * as devicesRoute from "@/app/api/v1/devices/route";
import * as deviceRoute from "@/app/api/v1/devices/[id]/route";
import * as nbdCaRoute from "@/app/api/v1/nbd-ca/route";
import * as attachCommandsRoute from "@/app/api/v1/volumes/[name]/attach-commands/route";
import * as detachRoute from "@/app/api/v1/volumes/[name]/detach/route";
import * as volumeOrphansRoute from "@/app/api/v1/volumes/[name]/orphans/route";
import * as importProgressRoute from "@/app/api/v1/volumes/[name]/import-progress/route";
import * as importCancelRoute from "@/app/api/v1/volumes/[name]/import-cancel/route";
import * as orphansRoute from "@/app/api/v1/orphans/route";
import * as orphanRoute from "@/app/api/v1/orphans/[id]/route";
import * as orphanImageRoute from "@/app/api/v1/orphans/[id]/image/route";
import * as snapshotsRoute from "@/app/api/v1/volumes/[name]/snapshots/route";
import * as snapshotRoute from "@/app/api/v1/volumes/[name]/snapshots/[snapshot]/route";
import * as cloneRoute from "@/app/api/v1/volumes/[name]/clone/route";
import { contextFromRequest } from "./context";
import { appRouter } from "./root-router";
import { makeRequest, registerRuntime, sessionCookie, type Caller } from "./testing";

const PASS = "alpha passphrase 1";
const VOL = "vol-a";

type Who = "anonymous" | "B session" | "B token" | "A read token" | "A revoked token" | "A expired token" | "A session without csrf";

describe.each(DATABASE_KINDS)("authorization (%s)", (kind) => {
  let t: TestRuntime;
  let unregister: () => void;
  const callers = {} as Record<Who | "A session", Caller>;
  let aWrite: CreatedApiToken;
  let aVolumeId: string;
  let aDeviceId: string;
  let aOrphanSetId: string;

  beforeAll(async () => {
    t = await openTestRuntime(kind);
    unregister = registerRuntime(t.runtime);
    const anon = { runtime: t.runtime };
    const a = await signUp(anon, { email: "a@example.com", password: "a-password-123" }, "open");
    const b = await signUp(anon, { email: "b@example.com", password: "b-password-123" }, "open");
    const ctxA: ServiceContext = { runtime: t.runtime, actor: { userId: a.id, via: "session", scope: "write" } };
    aVolumeId = (await createVolume(ctxA, { name: VOL, size: "1M", chunkSize: "64K", passphrase: PASS, autoUnlock: false })).id;
    aDeviceId = (await createDeviceCredential(ctxA, { name: "a laptop" })).credential.id;
    const db = t.runtime.database.db;
    const orphan = { volumeId: aVolumeId, gatewayId: "gw-a", dirName: `${aVolumeId}-1`, fencingToken: 1, bytes: 4096, dirtyChunks: 1 };
    aOrphanSetId = (await recordOrphanSet(db, { ...orphan, reason: "fenced in a test", orphanedAt: new Date() }))!.id;
    aWrite = await issueApiToken(db, a.id, { name: "a write", scope: "write", expiresAt: null });
    const aRead = await issueApiToken(db, a.id, { name: "a read", scope: "read", expiresAt: null });
    const aRevoked = await issueApiToken(db, a.id, { name: "a revoked", scope: "write", expiresAt: null });
    await appRouter
      .createCaller(await contextFromRequest(makeRequest({ kind: "session", cookie: await sessionCookie(a.id) }, "POST", "/api/trpc")))
      .token.revoke({ id: aRevoked.token.id });
    const aExpired = await issueApiToken(db, a.id, { name: "a expired", scope: "write", expiresAt: new Date(Date.now() - 1000) });
    const bToken = await issueApiToken(db, b.id, { name: "b write", scope: "write", expiresAt: null });
    Object.assign(callers, {
      anonymous: { kind: "anonymous" },
      "A session": { kind: "session", cookie: await sessionCookie(a.id) },
      "A session without csrf": { kind: "session", cookie: await sessionCookie(a.id), csrf: false },
      "B session": { kind: "session", cookie: await sessionCookie(b.id) },
      "B token": { kind: "token", secret: bToken.secret },
      "A read token": { kind: "token", secret: aRead.secret },
      "A revoked token": { kind: "token", secret: aRevoked.secret },
      "A expired token": { kind: "token", secret: aExpired.secret },
    });
  });
  afterAll(async () => {
    unregister?.();
    await t?.dispose();
  });

  const caller = async (who: Who | "A session") => appRouter.createCaller(await contextFromRequest(makeRequest(callers[who], "POST", "/api/trpc")));
  type C = Awaited<ReturnType<typeof caller>>;
  let fresh = 0;
  /** Every procedure of the router (but health and signUp, which are public), aimed at A's things. */
  const procedures: Array<{ name: string; write: boolean; targetsA: boolean; call: (c: C) => Promise<unknown> }> = [
    { name: "account.me", write: false, targetsA: false, call: (c) => c.account.me() },
    { name: "account.activity", write: false, targetsA: false, call: (c) => c.account.activity() },
    // A is the admin; B (not one) is refused these with FORBIDDEN (packages/control accounts tests).
    { name: "account.listInvitations", write: false, targetsA: false, call: (c) => c.account.listInvitations() },
    { name: "account.createInvitation", write: true, targetsA: false, call: (c) => c.account.createInvitation({}) },
    { name: "account.revokeInvitation", write: true, targetsA: false, call: (c) => c.account.revokeInvitation({ id: "inv_none" }) },
    { name: "volume.list", write: false, targetsA: false, call: (c) => c.volume.list() },
    { name: "volume.get", write: false, targetsA: true, call: (c) => c.volume.get({ name: VOL }) },
    { name: "volume.create", write: true, targetsA: false, call: (c) => c.volume.create({ name: `new-${++fresh}`, size: "1M" }) },
    { name: "volume.resize", write: true, targetsA: true, call: (c) => c.volume.resize({ name: VOL, size: "2M" }) },
    {
      name: "volume.changePassphrase",
      write: true,
      targetsA: true,
      call: (c) => c.volume.changePassphrase({ name: VOL, oldPassphrase: PASS, newPassphrase: "another passphrase" }),
    },
    { name: "volume.unlock", write: true, targetsA: true, call: (c) => c.volume.unlock({ name: VOL, passphrase: PASS }) },
    { name: "volume.lock", write: true, targetsA: true, call: (c) => c.volume.lock({ name: VOL }) },
    { name: "volume.delete", write: true, targetsA: true, call: (c) => c.volume.delete({ name: VOL, confirm: VOL }) },
    { name: "volume.detach", write: true, targetsA: true, call: (c) => c.volume.detach({ name: VOL, force: true }) },
    { name: "volume.deleteProgress", write: false, targetsA: true, call: (c) => c.volume.deleteProgress({ name: VOL }) },
    { name: "volume.activity", write: false, targetsA: true, call: (c) => c.volume.activity({ name: VOL }) },
    { name: "volume.metrics", write: false, targetsA: true, call: (c) => c.volume.metrics({ name: VOL, minutes: 60 }) },
    { name: "volume.orphanSets", write: false, targetsA: true, call: (c) => c.volume.orphanSets({ name: VOL }) },
    { name: "volume.discardOrphanSet", write: true, targetsA: true, call: (c) => c.volume.discardOrphanSet({ id: aOrphanSetId }) },
    { name: "volume.attachCommands", write: false, targetsA: true, call: (c) => c.volume.attachCommands({ name: VOL }) },
    // Refused before the URL is read (nothing listens at port 9): the checks come first.
    { name: "volume.import", write: true, targetsA: false, call: (c) => c.volume.import({ name: `imp-${++fresh}`, url: "http://127.0.0.1:9/x.img" }) },
    { name: "volume.importProgress", write: false, targetsA: true, call: (c) => c.volume.importProgress({ name: VOL }) },
    { name: "volume.cancelImport", write: true, targetsA: true, call: (c) => c.volume.cancelImport({ name: VOL }) },
    { name: "snapshot.list", write: false, targetsA: true, call: (c) => c.snapshot.list({ name: VOL }) },
    { name: "snapshot.create", write: true, targetsA: true, call: (c) => c.snapshot.create({ name: VOL, snapshot: "snap" }) },
    { name: "snapshot.delete", write: true, targetsA: true, call: (c) => c.snapshot.delete({ name: VOL, snapshot: "snap" }) },
    {
      name: "volume.clone",
      write: true,
      targetsA: true,
      call: (c) => c.volume.clone({ source: `${VOL}@snap`, name: `clone-${++fresh}`, passphrase: PASS, autoUnlock: false }),
    },
    { name: "token.list", write: false, targetsA: false, call: (c) => c.token.list() },
    { name: "token.create", write: true, targetsA: false, call: (c) => c.token.create({ name: "x", scope: "read" }) },
    { name: "token.revoke", write: true, targetsA: true, call: (c) => c.token.revoke({ id: aWrite.token.id }) },
    { name: "devices.list", write: false, targetsA: false, call: (c) => c.devices.list() },
    { name: "devices.create", write: true, targetsA: false, call: (c) => c.devices.create({ name: `device ${++fresh}` }) },
    { name: "devices.revoke", write: true, targetsA: true, call: (c) => c.devices.revoke({ id: aDeviceId }) },
    { name: "devices.ca", write: false, targetsA: false, call: (c) => c.devices.ca() },
    { name: "devices.attachCommands", write: false, targetsA: true, call: (c) => c.devices.attachCommands({ name: VOL, device: aDeviceId }) },
  ];

  async function codeOf(promise: Promise<unknown>): Promise<string> {
    try {
      await promise;
      return "OK";
    } catch (error) {
      if (error instanceof TRPCError) return error.code;
      throw error;
    }
  }

  it("covers every procedure of the router", () => {
    const all: string[] = [];
    const walk = (record: Record<string, unknown>, prefix: string) => {
      for (const [key, value] of Object.entries(record)) {
        if (typeof value === "function") all.push(`${prefix}${key}`);
        else if (value && typeof value === "object") walk(value as Record<string, unknown>, `${prefix}${key}.`);
      }
    };
    walk(appRouter._def.procedures as Record<string, unknown>, "");
    const covered = new Set([...procedures.map((p) => p.name), "health", "account.signUp"]);
    expect(all.filter((name) => !covered.has(name))).toEqual([]);
  });

  it.each(["anonymous", "A revoked token", "A expired token"] as const)("tRPC: %s is UNAUTHORIZED everywhere", async (who) => {
    const c = await caller(who);
    for (const procedure of procedures) expect(await codeOf(procedure.call(c)), procedure.name).toBe("UNAUTHORIZED");
    expect(await c.health()).toEqual({ ok: true });
  });

  it.each(["B session", "B token"] as const)("tRPC: %s gets NOT_FOUND for A's volume and token, and sees none of A's", async (who) => {
    const c = await caller(who);
    for (const procedure of procedures.filter((p) => p.targetsA)) expect(await codeOf(procedure.call(c)), procedure.name).toBe("NOT_FOUND");
    expect((await c.volume.list()).map((v) => v.id)).not.toContain(aVolumeId);
    expect((await c.token.list()).map((tok) => tok.id)).not.toContain(aWrite.token.id);
    expect((await c.devices.list()).map((d) => d.id)).not.toContain(aDeviceId);
    expect((await c.account.me()).email).toBe("b@example.com");
    expect((await c.account.activity()).map((entry) => entry.volumeName)).not.toContain(VOL);
  });

  it("tRPC: a read-only token is FORBIDDEN to change anything and may read", async () => {
    const c = await caller("A read token");
    for (const procedure of procedures.filter((p) => p.write)) expect(await codeOf(procedure.call(c)), procedure.name).toBe("FORBIDDEN");
    for (const procedure of procedures.filter((p) => !p.write && p.name !== "volume.deleteProgress" && p.name !== "volume.importProgress")) {
      expect(await codeOf(procedure.call(c)), procedure.name).toBe("OK");
    }
  });

  it("tRPC: a session without the CSRF header is FORBIDDEN on every mutation", async () => {
    const c = await caller("A session without csrf");
    for (const procedure of procedures.filter((p) => p.write)) expect(await codeOf(procedure.call(c)), procedure.name).toBe("FORBIDDEN");
  });

  /** Every REST route, aimed at A's volume. */
  const routes: Array<{ name: string; write: boolean; targetsA: boolean; call: (who: Who | "A session") => Promise<Response> }> = [
    { name: "GET /volumes", write: false, targetsA: false, call: (who) => volumesRoute.GET(makeRequest(callers[who], "GET", "/api/v1/volumes")) },
    {
      name: "POST /volumes",
      write: true,
      targetsA: false,
      call: (who) => volumesRoute.POST(makeRequest(callers[who], "POST", "/api/v1/volumes", { name: `rest-${++fresh}`, size: "1M" })),
    },
    {
      name: "GET /volumes/:name",
      write: false,
      targetsA: true,
      call: (who) => volumeRoute.GET(makeRequest(callers[who], "GET", `/api/v1/volumes/${VOL}`), params()),
    },
    {
      name: "PATCH /volumes/:name",
      write: true,
      targetsA: true,
      call: (who) => volumeRoute.PATCH(makeRequest(callers[who], "PATCH", `/api/v1/volumes/${VOL}`, { size: "2M" }), params()),
    },
    {
      name: "DELETE /volumes/:name",
      write: true,
      targetsA: true,
      call: (who) => volumeRoute.DELETE(makeRequest(callers[who], "DELETE", `/api/v1/volumes/${VOL}`), params()),
    },
    {
      name: "POST /volumes/:name/unlock",
      write: true,
      targetsA: true,
      call: (who) => unlockRoute.POST(makeRequest(callers[who], "POST", `/api/v1/volumes/${VOL}/unlock`, { passphrase: PASS }), params()),
    },
    {
      name: "POST /volumes/:name/passphrase",
      write: true,
      targetsA: true,
      call: (who) =>
        passphraseRoute.POST(
          makeRequest(callers[who], "POST", `/api/v1/volumes/${VOL}/passphrase`, { oldPassphrase: PASS, newPassphrase: "another passphrase" }),
          params(),
        ),
    },
    {
      name: "POST /volumes/:name/detach",
      write: true,
      targetsA: true,
      call: (who) => detachRoute.POST(makeRequest(callers[who], "POST", `/api/v1/volumes/${VOL}/detach`, { force: true }), params()),
    },
    {
      name: "GET /volumes/:name/delete-progress",
      write: false,
      targetsA: true,
      call: (who) => progressRoute.GET(makeRequest(callers[who], "GET", `/api/v1/volumes/${VOL}/delete-progress`), params()),
    },
    {
      name: "POST /volumes/import",
      write: true,
      targetsA: false,
      call: (who) =>
        volumeRoute.POST(makeRequest(callers[who], "POST", "/api/v1/volumes/import", { name: `rest-imp-${++fresh}`, url: "http://127.0.0.1:9/x.img" }), {
          params: Promise.resolve({ name: "import" }),
        }),
    },
    {
      name: "GET /volumes/:name/import-progress",
      write: false,
      targetsA: true,
      call: (who) => importProgressRoute.GET(makeRequest(callers[who], "GET", `/api/v1/volumes/${VOL}/import-progress`), params()),
    },
    {
      name: "POST /volumes/:name/import-cancel",
      write: true,
      targetsA: true,
      call: (who) => importCancelRoute.POST(makeRequest(callers[who], "POST", `/api/v1/volumes/${VOL}/import-cancel`), params()),
    },
    { name: "POST /recover", write: true, targetsA: true, call: (who) => recoverRoute.POST(makeRequest(callers[who], "POST", "/api/v1/recover", {})) },
    { name: "GET /devices", write: false, targetsA: false, call: (who) => devicesRoute.GET(makeRequest(callers[who], "GET", "/api/v1/devices")) },
    {
      name: "POST /devices",
      write: true,
      targetsA: false,
      call: (who) => devicesRoute.POST(makeRequest(callers[who], "POST", "/api/v1/devices", { name: `rest device ${++fresh}` })),
    },
    { name: "GET /orphans", write: false, targetsA: false, call: (who) => orphansRoute.GET(makeRequest(callers[who], "GET", "/api/v1/orphans")) },
    {
      name: "GET /volumes/:name/orphans",
      write: false,
      targetsA: true,
      call: (who) => volumeOrphansRoute.GET(makeRequest(callers[who], "GET", `/api/v1/volumes/${VOL}/orphans`), params()),
    },
    {
      name: "GET /orphans/:id",
      write: false,
      targetsA: true,
      call: (who) => orphanRoute.GET(makeRequest(callers[who], "GET", `/api/v1/orphans/${aOrphanSetId}`), orphanParams()),
    },
    {
      // Needs write scope (decrypted data), but is a GET: no CSRF proof to check; the verb's own tests refuse read-only tokens.
      name: "GET /orphans/:id/image",
      write: false,
      targetsA: true,
      call: (who) => orphanImageRoute.GET(makeRequest(callers[who], "GET", `/api/v1/orphans/${aOrphanSetId}/image`), orphanParams()),
    },
    {
      name: "DELETE /orphans/:id",
      write: true,
      targetsA: true,
      call: (who) => orphanRoute.DELETE(makeRequest(callers[who], "DELETE", `/api/v1/orphans/${aOrphanSetId}`), orphanParams()),
    },
    {
      name: "DELETE /devices/:id",
      write: true,
      targetsA: true,
      call: (who) => deviceRoute.DELETE(makeRequest(callers[who], "DELETE", `/api/v1/devices/${aDeviceId}`), { params: Promise.resolve({ id: aDeviceId }) }),
    },
    { name: "GET /nbd-ca", write: false, targetsA: false, call: (who) => nbdCaRoute.GET(makeRequest(callers[who], "GET", "/api/v1/nbd-ca")) },
    {
      name: "GET /volumes/:name/attach-commands",
      write: false,
      targetsA: true,
      call: (who) => attachCommandsRoute.GET(makeRequest(callers[who], "GET", `/api/v1/volumes/${VOL}/attach-commands?device=${aDeviceId}`), params()),
    },
    {
      name: "GET /volumes/:name/snapshots",
      write: false,
      targetsA: true,
      call: (who) => snapshotsRoute.GET(makeRequest(callers[who], "GET", `/api/v1/volumes/${VOL}/snapshots`), params()),
    },
    {
      name: "POST /volumes/:name/snapshots",
      write: true,
      targetsA: true,
      call: (who) => snapshotsRoute.POST(makeRequest(callers[who], "POST", `/api/v1/volumes/${VOL}/snapshots`, { snapshot: "snap" }), params()),
    },
    {
      name: "DELETE /volumes/:name/snapshots/:snapshot",
      write: true,
      targetsA: true,
      call: (who) =>
        snapshotRoute.DELETE(makeRequest(callers[who], "DELETE", `/api/v1/volumes/${VOL}/snapshots/snap`), {
          params: Promise.resolve({ name: VOL, snapshot: "snap" }),
        }),
    },
    {
      name: "POST /volumes/:name/clone",
      write: true,
      targetsA: true,
      call: (who) =>
        cloneRoute.POST(
          makeRequest(callers[who], "POST", `/api/v1/volumes/${VOL}/clone`, {
            snapshot: "snap",
            name: `rest-clone-${++fresh}`,
            passphrase: PASS,
            autoUnlock: false,
          }),
          params(),
        ),
    },
  ];
  const params = () => ({ params: Promise.resolve({ name: VOL }) });
  const orphanParams = () => ({ params: Promise.resolve({ id: aOrphanSetId }) });

  it.each(["anonymous", "A revoked token", "A expired token"] as const)("REST: %s gets 401 everywhere but health", async (who) => {
    for (const route of routes) {
      const response = await route.call(who);
      expect(response.status, route.name).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
    }
    expect(healthRoute.GET().status).toBe(200);
  });

  it.each(["B session", "B token"] as const)("REST: %s gets 404 for A's volume (403 for recover: not an admin)", async (who) => {
    for (const route of routes.filter((r) => r.targetsA)) {
      expect((await route.call(who)).status, route.name).toBe(route.name === "POST /recover" ? 403 : 404);
    }
    const list = (await (await routes[0]!.call(who)).json()) as { volumes: Array<{ id: string }> };
    expect(list.volumes.map((v) => v.id)).not.toContain(aVolumeId);
  });

  it("REST: a read-only token gets 403 on every write; a cookie write without CSRF proof gets 403", async () => {
    for (const route of routes.filter((r) => r.write)) {
      expect((await route.call("A read token")).status, route.name).toBe(403);
      expect((await route.call("A session without csrf")).status, route.name).toBe(403);
    }
    expect((await routes[2]!.call("A read token")).status).toBe(200);
  });

  it("left A's volume and tokens exactly as they were, and A can still use them", async () => {
    const a = await caller("A session");
    const volume = await a.volume.get({ name: VOL });
    expect(volume).toMatchObject({ id: aVolumeId, sizeBytes: 2 ** 20, state: "active", hasPassphrase: true });
    // The passphrase was never changed by anyone else: it still unlocks.
    expect((await a.volume.unlock({ name: VOL, passphrase: PASS })).unlocked).toBe(true);
    const tokens = await a.token.list();
    expect(tokens.find((tok) => tok.id === aWrite.token.id)?.status).toBe("active");
    expect((await a.devices.list()).map((d) => [d.id, d.status])).toEqual([[aDeviceId, "active"]]);
    const activity = await a.volume.activity({ name: VOL });
    expect(activity.map((entry) => entry.action)).toEqual(["volume.unlock", "volume.create"]);
  });
});
