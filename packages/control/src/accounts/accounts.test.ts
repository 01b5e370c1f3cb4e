/**
 * Accounts on PGlite and PostgreSQL, with real Redis: 20 simultaneous sign-ups on a fresh deployment make
 * exactly one admin; invitation-only sign-up (setup token for the first admin, admins' single-use
 * invitations); sign-up rate limits; per-address sign-in limits that count failures only.
 */
import { executeRows } from "@stratus/db";
import { DATABASE_KINDS } from "@stratus/db/testing";
import { sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ServiceContext } from "../context";
import { isServiceError } from "../errors";
import { openTestRuntime, type TestRuntime } from "../testing";
import { signUp, verifyCredentials } from "./accounts";
import { createInvitation, issueSetupToken, listInvitations, revokeInvitation } from "./invitations";

const PASSWORD = "a-good-password-42";

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string; field?: string }> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isServiceError(error)) throw new Error(`expected a ServiceError, got ${String(error)}`);
  return { code: error.code, message: error.message, field: error.field };
}

describe.each(DATABASE_KINDS)("accounts (%s)", (kind) => {
  let t: TestRuntime;
  beforeEach(async () => {
    t = await openTestRuntime(kind);
  });
  afterEach(() => t?.dispose());

  it("20 parallel sign-ups on a fresh deployment make exactly one admin", async () => {
    const made = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        signUp({ runtime: t.runtime, requestMeta: { ip: `10.0.${i}.1` } }, { email: `p${i}@example.com`, password: PASSWORD }, "open"),
      ),
    );
    expect(made.filter((account) => account.isAdmin)).toHaveLength(1);
  });

  it("by invitation: the setup token makes the first admin once; admins' invitations are single-use", async () => {
    const anon = { runtime: t.runtime, requestMeta: { ip: "10.1.0.1" } };
    expect(await refusal(signUp(anon, { email: "first@example.com", password: PASSWORD }, "invite"))).toMatchObject({ code: "FORBIDDEN", field: "invitation" });
    const setup = (await issueSetupToken(t.runtime))!;
    expect(setup.path).toBe(`/sign-up#invitation=${setup.token}`);
    expect(await refusal(signUp(anon, { email: "first@example.com", password: PASSWORD, invitation: "stratus_inv_guess" }, "invite"))).toMatchObject({
      code: "FORBIDDEN",
      message: "this invitation is unknown, already used or expired",
    });
    const admin = await signUp(anon, { email: "first@example.com", password: PASSWORD, invitation: setup.token }, "invite");
    expect(admin.isAdmin).toBe(true);
    expect(await issueSetupToken(t.runtime)).toBeUndefined();
    expect((await refusal(signUp(anon, { email: "again@example.com", password: PASSWORD, invitation: setup.token }, "invite"))).code).toBe("FORBIDDEN");

    const adminCtx: ServiceContext = { runtime: t.runtime, actor: { userId: admin.id, via: "session", scope: "write" } };
    const created = await createInvitation(adminCtx, { expiresInHours: 1 });
    expect(created.token).toMatch(/^stratus_inv_[A-Za-z0-9_-]{32}$/);
    const invitee = await signUp(
      { runtime: t.runtime, requestMeta: { ip: "10.1.0.2" } },
      { email: "invitee@example.com", password: PASSWORD, invitation: created.token },
      "invite",
    );
    expect(invitee.isAdmin).toBe(false);
    expect((await refusal(signUp({ runtime: t.runtime }, { email: "third@example.com", password: PASSWORD, invitation: created.token }, "invite"))).code).toBe(
      "FORBIDDEN",
    );
    expect((await listInvitations(adminCtx)).map((i) => i.state)).toEqual(["used"]);

    // Not an admin: no invitations. Withdrawn: no sign-up.
    const inviteeCtx: ServiceContext = { runtime: t.runtime, actor: { userId: invitee.id, via: "session", scope: "write" } };
    expect((await refusal(createInvitation(inviteeCtx))).code).toBe("FORBIDDEN");
    const withdrawn = await createInvitation(adminCtx);
    await revokeInvitation(adminCtx, { id: withdrawn.invitation.id });
    expect((await refusal(signUp({ runtime: t.runtime }, { email: "late@example.com", password: PASSWORD, invitation: withdrawn.token }, "invite"))).code).toBe(
      "FORBIDDEN",
    );
    // Only hashes are stored, and no log line carries a token.
    const stored = JSON.stringify(await executeRows(t.runtime.database.db, sql`select * from invitations`));
    for (const token of [setup.token, created.token, withdrawn.token]) {
      expect(stored).not.toContain(token);
      expect(t.logs.join("\n")).not.toContain(token);
    }
  });

  it("rate-limits sign-up per address, every attempt counting", async () => {
    const from = (ip: string) => ({ runtime: t.runtime, requestMeta: { ip } });
    for (let i = 0; i < 5; i++)
      expect((await refusal(signUp(from("10.2.0.1"), { email: `x${i}@example.com`, password: PASSWORD }, "invite"))).code).toBe("FORBIDDEN");
    expect(await refusal(signUp(from("10.2.0.1"), { email: "y@example.com", password: PASSWORD }, "open"))).toMatchObject({
      code: "TOO_MANY_REQUESTS",
      message: expect.stringMatching(/^too many sign-up attempts; try again in \d+ minutes?$/),
    });
    expect((await signUp(from("10.2.0.2"), { email: "y@example.com", password: PASSWORD }, "open")).email).toBe("y@example.com");
  });

  it("per-address sign-in limits count failures, not successes", async () => {
    await signUp({ runtime: t.runtime }, { email: "busy@example.com", password: PASSWORD }, "open");
    const from = (ip: string) => ({ runtime: t.runtime, requestMeta: { ip } });
    // Many good sign-ins from one shared address are fine.
    for (let i = 0; i < 15; i++) await verifyCredentials(from("10.3.0.1"), { email: "busy@example.com", password: PASSWORD });
    // Ten failures (different emails, so the per-email limit is not what stops it) close the address.
    for (let i = 0; i < 10; i++)
      expect((await refusal(verifyCredentials(from("10.3.0.1"), { email: `nobody${i}@example.com`, password: "wrong" }))).code).toBe("UNAUTHORIZED");
    expect((await refusal(verifyCredentials(from("10.3.0.1"), { email: "busy@example.com", password: PASSWORD }))).code).toBe("TOO_MANY_REQUESTS");
    expect((await verifyCredentials(from("10.3.0.2"), { email: "busy@example.com", password: PASSWORD })).email).toBe("busy@example.com");
  });
});
