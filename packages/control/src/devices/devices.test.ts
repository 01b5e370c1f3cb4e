import { X509Certificate, createHash, createPrivateKey, randomBytes } from "node:crypto";
import { DATABASE_KINDS } from "@stratus/db/testing";
import { activityLog, deploymentKeys, deviceCredentials, findUnusableDeviceCredentials, insertAccount, insertVolume, type UserRow } from "@stratus/db";
import { masterKeyId } from "@stratus/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceContext } from "../context";
import { openTestRuntime, type TestRuntime } from "../testing";
import { authorizeDeviceCredential, listDeviceVolumes } from "./device-access";
import { createDeviceCredential, listDeviceCredentials, revokeDeviceCredential } from "./devices";
import { getNbdCa, issueNbdCertificate, loadNbdCa } from "./nbd-ca";
import { derivePskKey } from "./psk";

const MiB = 2 ** 20;

describe.each(DATABASE_KINDS)("device credentials on %s", (kind) => {
  let t: TestRuntime;
  let alice: UserRow;
  let bob: UserRow;
  const as = (user: UserRow, scope: "read" | "write" = "write"): ServiceContext => ({ runtime: t.runtime, actor: { userId: user.id, via: "session", scope } });

  beforeAll(async () => {
    t = await openTestRuntime(kind);
    const db = t.runtime.database.db;
    alice = await insertAccount(db, { email: "alice@example.com", passwordHash: "scrypt$x", isAdmin: false });
    bob = await insertAccount(db, { email: "bob@example.com", passwordHash: "scrypt$y", isAdmin: false });
    for (const name of ["disk1", "disk2"]) await insertVolume(db, { ownerId: alice.id, name, sizeBytes: 8 * MiB, chunkSize: MiB });
    await insertVolume(db, { ownerId: bob.id, name: "disk1", sizeBytes: 8 * MiB, chunkSize: MiB });
  });
  afterAll(() => t?.dispose());

  it("creates a credential whose PSK and client certificate work, and stores nothing secret", async () => {
    const created = await createDeviceCredential(as(alice), { name: "laptop" });
    const { credential, secret } = created;
    expect(credential).toMatchObject({ name: "laptop", volumes: null, status: "active", expiresAt: null, lastUsedAt: null, revokedAt: null });
    expect(credential.id).toMatch(/^dev_/);
    expect(secret.pskIdentity).toBe(credential.id);
    expect(secret.pskKeyHex).toBe(derivePskKey(t.runtime.masterKey.key, credential.id).toString("hex"));
    expect(secret.pskKeyHex).toMatch(/^[0-9a-f]{64}$/);
    expect(secret.pskFile).toBe(`${credential.id}:${secret.pskKeyHex}\n`);

    const ca = new X509Certificate(secret.caCertPem);
    const cert = new X509Certificate(secret.clientCertPem);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subject).toBe(`CN=${credential.id}`);
    expect(cert.keyUsage).toContain("1.3.6.1.5.5.7.3.2"); // clientAuth
    expect(createHash("sha256").update(cert.raw).digest("hex")).toBe(credential.certFingerprintSha256);
    expect(cert.checkPrivateKey(createPrivateKey(secret.clientKeyPem))).toBe(true);
    expect(await getNbdCa(t.runtime)).toEqual({ certPem: secret.caCertPem, fingerprintSha256: createHash("sha256").update(ca.raw).digest("hex") });

    // Neither the PSK, nor the client key, nor the CA's private key sits anywhere in plain form.
    const dump = JSON.stringify([
      await t.runtime.database.db.select().from(deviceCredentials),
      await t.runtime.database.db.select().from(deploymentKeys),
      await t.runtime.database.db.select().from(activityLog),
    ]);
    expect(dump).not.toContain("PRIVATE KEY");
    for (const secretText of [secret.pskKeyHex, secret.clientKeyPem.split("\n")[1]!, t.runtime.masterKey.key.toString("base64")]) {
      expect(dump).not.toContain(secretText);
      expect(t.logs.join("\n")).not.toContain(secretText);
    }
  });

  it("limits a credential to chosen volumes of its owner", async () => {
    const { credential } = await createDeviceCredential(as(alice), { name: "limited", volumes: ["disk2", "disk2"] });
    expect(credential.volumes).toEqual(["disk2"]);
    const access = await authorizeDeviceCredential(t.runtime.database.db, { pskIdentity: credential.id });
    expect(access).toMatchObject({ userId: alice.id, name: "limited" });
    expect((await listDeviceVolumes(t.runtime.database.db, access!)).map((row) => row.name)).toEqual(["disk2"]);
    const all = await createDeviceCredential(as(bob), { name: "bobs" });
    const bobAccess = await authorizeDeviceCredential(t.runtime.database.db, { pskIdentity: all.credential.id });
    expect((await listDeviceVolumes(t.runtime.database.db, bobAccess!)).map((row) => [row.name, row.ownerId])).toEqual([["disk1", bob.id]]);
    // Another user's volume name is as unknown as no volume at all.
    await expect(createDeviceCredential(as(bob), { name: "sneaky", volumes: ["disk2"] })).rejects.toMatchObject({ code: "NOT_FOUND", field: "volumes" });
  });

  it("refuses a second live credential of the same name, a read-only actor and bad input", async () => {
    await createDeviceCredential(as(alice), { name: "phone" });
    await expect(createDeviceCredential(as(alice), { name: " phone " })).rejects.toMatchObject({ code: "CONFLICT", field: "name" });
    // The same name for another user is fine.
    await createDeviceCredential(as(bob), { name: "phone" });
    await expect(createDeviceCredential(as(alice, "read"), { name: "x" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(createDeviceCredential(as(alice), { name: "" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      field: "name",
      message: "name: give the device a name",
    });
    await expect(createDeviceCredential(as(alice), { name: "y", expiresInDays: 0 })).rejects.toMatchObject({ code: "BAD_REQUEST", field: "expiresInDays" });
  });

  it("authorizes by PSK identity and by certificate fingerprint until revoked, touching last use rarely", async () => {
    const db = t.runtime.database.db;
    const { credential } = await createDeviceCredential(as(alice), { name: "desktop" });
    const byFingerprint = await authorizeDeviceCredential(db, { certFingerprintSha256: credential.certFingerprintSha256.toUpperCase() });
    expect(byFingerprint).toEqual({ credentialId: credential.id, name: "desktop", userId: alice.id, volumeIds: null });
    const firstUse = (await listDeviceCredentials(as(alice))).find((c) => c.id === credential.id)!.lastUsedAt;
    expect(firstUse).not.toBeNull();
    await authorizeDeviceCredential(db, { pskIdentity: credential.id }, new Date(Date.parse(firstUse!) + 1000));
    expect((await listDeviceCredentials(as(alice))).find((c) => c.id === credential.id)!.lastUsedAt).toBe(firstUse);
    const later = new Date(Date.parse(firstUse!) + 120_000);
    await authorizeDeviceCredential(db, { pskIdentity: credential.id }, later);
    expect((await listDeviceCredentials(as(alice))).find((c) => c.id === credential.id)!.lastUsedAt).toBe(later.toISOString());

    expect(await authorizeDeviceCredential(db, { pskIdentity: "dev_unknownunknownunknow" })).toBeUndefined();
    expect(await authorizeDeviceCredential(db, { pskIdentity: "not an id" })).toBeUndefined();
    expect(await authorizeDeviceCredential(db, { certFingerprintSha256: "00".repeat(32) })).toBeUndefined();

    await expect(revokeDeviceCredential(as(bob), { id: credential.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await findUnusableDeviceCredentials(db, [credential.id], new Date())).toEqual([]);
    const revoked = await revokeDeviceCredential(as(alice), { id: credential.id });
    expect(revoked.status).toBe("revoked");
    await expect(revokeDeviceCredential(as(alice), { id: credential.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await authorizeDeviceCredential(db, { pskIdentity: credential.id })).toBeUndefined();
    expect(await authorizeDeviceCredential(db, { certFingerprintSha256: credential.certFingerprintSha256 })).toBeUndefined();
    expect(await findUnusableDeviceCredentials(db, [credential.id, "dev_gone"], new Date())).toEqual([credential.id, "dev_gone"]);
    // A revoked name is free again.
    await createDeviceCredential(as(alice), { name: "desktop" });
  });

  it("expires", async () => {
    const db = t.runtime.database.db;
    const { credential, secret } = await createDeviceCredential(as(alice), { name: "short", expiresInDays: 1 });
    expect(Date.parse(new X509Certificate(secret.clientCertPem).validTo)).toBeLessThanOrEqual(Date.parse(credential.expiresAt!));
    const afterExpiry = new Date(Date.parse(credential.expiresAt!) + 1);
    expect(await authorizeDeviceCredential(db, { pskIdentity: credential.id }, new Date())).toBeDefined();
    expect(await authorizeDeviceCredential(db, { pskIdentity: credential.id }, afterExpiry)).toBeUndefined();
    expect(await findUnusableDeviceCredentials(db, [credential.id], afterExpiry)).toEqual([credential.id]);
  });

  it("keeps one CA per deployment, usable only with the master key that sealed it", async () => {
    const [a, b] = await Promise.all([getNbdCa(t.runtime), getNbdCa(t.runtime)]);
    expect(a).toEqual(b);
    const server = await issueNbdCertificate(t.runtime, { kind: "server", hosts: ["10.9.0.1", "nbd.example.com"] }, new Date(Date.now() + 86_400_000));
    const cert = new X509Certificate(server.certPem);
    expect(cert.checkIssued(new X509Certificate(a.certPem))).toBe(true);
    expect(cert.checkIP("10.9.0.1")).toBe("10.9.0.1");
    expect(cert.checkHost("nbd.example.com")).toBe("nbd.example.com");
    const otherKey = randomBytes(32);
    const stranger = { ...t.runtime, masterKey: { key: otherKey, id: masterKeyId(otherKey) } };
    await expect(loadNbdCa(stranger)).rejects.toMatchObject({ code: "CONFLICT" });
  });
});
