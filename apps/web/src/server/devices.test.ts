/**
 * Device credentials over REST, as the CLI and scripts use them: create answers 201 with the secret once
 * (and never again: not in the list, the logs or Redis), the CA answers its PEM and the fingerprint of
 * its DER, attach commands follow the credential's volume limit and status, revoke answers the
 * revoked view. Driven through the real route handlers with bearer tokens, on PGlite.
 */
import { X509Certificate, createHash } from "node:crypto";
import { createVolume, issueApiToken, signUp, type CreatedDeviceCredential, type DeviceAttachCommands, type DeviceCredentialView } from "@stratus/control";
import { openTestRuntime, type TestRuntime } from "@stratus/control/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as devicesRoute from "@/app/api/v1/devices/route";
import * as deviceRoute from "@/app/api/v1/devices/[id]/route";
import * as nbdCaRoute from "@/app/api/v1/nbd-ca/route";
import * as attachCommandsRoute from "@/app/api/v1/volumes/[name]/attach-commands/route";
import { makeRequest, registerRuntime, type Caller } from "./testing";

describe("device credentials over REST", () => {
  let t: TestRuntime;
  let unregister: () => void;
  let token: Caller;

  beforeAll(async () => {
    t = await openTestRuntime("pglite");
    unregister = registerRuntime(t.runtime);
    const user = await signUp({ runtime: t.runtime }, { email: "d@example.com", password: "d-password-123" }, "open");
    const ctx = { runtime: t.runtime, actor: { userId: user.id, via: "session" as const, scope: "write" as const } };
    await createVolume(ctx, { name: "disk-a", size: "1M", chunkSize: "64K" });
    await createVolume(ctx, { name: "disk-b", size: "1M", chunkSize: "64K" });
    token = { kind: "token", secret: (await issueApiToken(t.runtime.database.db, user.id, { name: "cli", scope: "write", expiresAt: null })).secret };
  });
  afterAll(async () => {
    unregister?.();
    await t?.dispose();
  });

  const call = async <T>(response: Promise<Response>, status: number): Promise<T> => {
    const answer = await response;
    const body = (await answer.json()) as T;
    expect(answer.status, JSON.stringify(body)).toBe(status);
    return body;
  };
  const attachCommands = (volume: string, device: string) =>
    attachCommandsRoute.GET(makeRequest(token, "GET", `/api/v1/volumes/${volume}/attach-commands?device=${encodeURIComponent(device)}`), {
      params: Promise.resolve({ name: volume }),
    });

  it("creates with the secret once, lists without it, and keeps it out of logs and Redis", async () => {
    const created = await call<CreatedDeviceCredential>(
      devicesRoute.POST(makeRequest(token, "POST", "/api/v1/devices", { name: "laptop", expiresInDays: 30 })),
      201,
    );
    expect(created.credential).toMatchObject({ name: "laptop", volumes: null, status: "active", lastUsedAt: null });
    expect(created.secret.pskFile).toBe(`${created.credential.id}:${created.secret.pskKeyHex}\n`);
    const cert = new X509Certificate(created.secret.clientCertPem);
    expect(cert.subject).toContain(`CN=${created.credential.id}`);
    expect(createHash("sha256").update(cert.raw).digest("hex")).toBe(created.credential.certFingerprintSha256);

    const listText = await (await devicesRoute.GET(makeRequest(token, "GET", "/api/v1/devices"))).text();
    const { devices } = JSON.parse(listText) as { devices: DeviceCredentialView[] };
    expect(devices.map((d) => d.name)).toEqual(["laptop"]);
    const everywhere = [listText, ...t.logs, ...(await t.dumpRedis())].join("\n");
    for (const secret of [created.secret.pskKeyHex, created.secret.clientKeyPem.split("\n")[1]!]) expect(everywhere).not.toContain(secret);
  });

  it("answers the CA's PEM with the SHA-256 of its DER, the same CA that signed the device", async () => {
    const ca = await call<{ certPem: string; fingerprintSha256: string }>(nbdCaRoute.GET(makeRequest(token, "GET", "/api/v1/nbd-ca")), 200);
    const caCert = new X509Certificate(ca.certPem);
    expect(createHash("sha256").update(caCert.raw).digest("hex")).toBe(ca.fingerprintSha256);
    const created = await call<CreatedDeviceCredential>(devicesRoute.POST(makeRequest(token, "POST", "/api/v1/devices", { name: "desktop" })), 201);
    expect(new X509Certificate(created.secret.clientCertPem).verify(caCert.publicKey)).toBe(true);
    expect(created.secret.caCertPem.trim()).toBe(ca.certPem.trim());
  });

  it("prints attach commands only for a volume the credential may use, and only while it is active", async () => {
    const limited = await call<CreatedDeviceCredential>(
      devicesRoute.POST(makeRequest(token, "POST", "/api/v1/devices", { name: "kiosk", volumes: ["disk-a"] })),
      201,
    );
    const id = limited.credential.id;
    const ok = await call<DeviceAttachCommands>(attachCommands("disk-a", id), 200);
    expect(ok.exportName).toBe("disk-a");
    expect(ok.commands.find((c) => c.id === "nbdinfo-psk")?.command).toContain(
      `nbds://${id}@${t.runtime.config.nbd.host}:${t.runtime.config.nbd.port}/disk-a?tls-psk-file=`,
    );
    // By name works too (what `stratus attach --device NAME` may send).
    expect((await call<DeviceAttachCommands>(attachCommands("disk-a", "kiosk"), 200)).device.id).toBe(id);
    const refused = await call<{ error: { code: string; message: string } }>(attachCommands("disk-b", id), 400);
    expect(refused.error.message).toMatch(/may not use volume disk-b/);

    const revoked = await call<DeviceCredentialView>(
      deviceRoute.DELETE(makeRequest(token, "DELETE", `/api/v1/devices/${id}`), { params: Promise.resolve({ id }) }),
      200,
    );
    expect(revoked).toMatchObject({ id, status: "revoked" });
    expect((await call<{ error: { message: string } }>(attachCommands("disk-a", id), 400)).error.message).toMatch(/revoked/);
    await call(attachCommands("disk-a", "dev_doesnotexist"), 404);
  });

  it("refuses bad input with the field named", async () => {
    const bad = await call<{ error: { code: string; field?: string } }>(
      devicesRoute.POST(makeRequest(token, "POST", "/api/v1/devices", { name: "", expiresInDays: 0 })),
      400,
    );
    expect(bad.error.code).toBe("BAD_REQUEST");
    expect(["name", "expiresInDays"]).toContain(bad.error.field);
  });
});
