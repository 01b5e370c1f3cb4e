/**
 * Invitations over REST: an admin (the first account) creates one with a bearer token and lists it; a
 * second account that is not an admin, and a read-only token, are refused; a bad expiry is a 400.
 */
import { issueApiToken, signUp } from "@stratus/control";
import { describe, expect, it } from "vitest";
import * as invitationsRoute from "@/app/api/v1/invitations/route";
import { makeRequest, useSignedInUser } from "./testing";

describe("REST /api/v1/invitations", () => {
  const admin = useSignedInUser("first-admin@example.com");

  it("lets the admin invite, and nobody else", async () => {
    const { t, caller, userId } = admin();
    const created = await invitationsRoute.POST(makeRequest(caller, "POST", "/api/v1/invitations", { expiresInHours: 2 }));
    expect(created.status).toBe(201);
    const body = (await created.json()) as { token: string; path: string; invitation: { state: string } };
    expect(body.path).toBe(`/sign-up#invitation=${body.token}`);
    expect(body.invitation.state).toBe("open");
    const listed = await invitationsRoute.GET(makeRequest(caller, "GET", "/api/v1/invitations"));
    expect(((await listed.json()) as { invitations: unknown[] }).invitations).toHaveLength(1);
    expect((await invitationsRoute.POST(makeRequest(caller, "POST", "/api/v1/invitations", { expiresInHours: 0 }))).status).toBe(400);

    const read = await issueApiToken(t.runtime.database.db, userId, { name: "read", scope: "read", expiresAt: null });
    expect((await invitationsRoute.POST(makeRequest({ kind: "token", secret: read.secret }, "POST", "/api/v1/invitations", {}))).status).toBe(403);
    const other = await signUp({ runtime: t.runtime }, { email: "not-admin@example.com", password: "not-admin-pass-1", invitation: body.token }, "invite");
    const otherToken = await issueApiToken(t.runtime.database.db, other.id, { name: "w", scope: "write", expiresAt: null });
    const refused = await invitationsRoute.POST(makeRequest({ kind: "token", secret: otherToken.secret }, "POST", "/api/v1/invitations", {}));
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toBe("only an admin can manage invitations");
    expect((await invitationsRoute.GET(makeRequest({ kind: "anonymous" }, "GET", "/api/v1/invitations"))).status).toBe(401);
  });
});
