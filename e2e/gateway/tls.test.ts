/**
 * NBD over TLS off loopback (issue 20 acceptance 1 and 2). Two network namespaces joined by a veth pair:
 * the gateway listens on the server namespace's address (so it requires TLS) and real clients run in
 * the client namespace — nbdinfo, nbdcopy, qemu-img and qemu-io, each with a TLS-PSK credential and with
 * an X.509 one. Then the refusals: no TLS, a wrong PSK, an unknown identity, a certificate of another
 * CA, an expired and a revoked credential (its open connection closed too), another user naming a
 * volume by name and by id, a limited credential asking for another volume — and a good client is
 * still served.
 *
 * The gateway shares a PostgreSQL database with this test (through a unix socket bridge: PostgreSQL
 * listens on this namespace's loopback only), so users, volumes and device credentials are made with
 * the same verbs the dashboard calls.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  createCertificateAuthority,
  createDeviceCredential,
  createVolume,
  deviceFiles,
  issueCertificate,
  loadCertificateAuthority,
  openRuntime,
  revokeDeviceCredential,
  type CreatedDeviceCredential,
  type OwnedRuntime,
  type ServiceContext,
} from "@stratus/control";
import { deviceCredentials, insertAccount, type UserRow } from "@stratus/db";
import { createTestDatabase, type TestDatabase } from "@stratus/db/testing";
import { eq } from "drizzle-orm";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bridgeUnixToTcp, CleanupStack, createNamespacePair, startGateway, waitFor, type Gateway, type NamespacePair, type RunResult } from "../harness";

const MiB = 2 ** 20;
const QUEUE_PREFIX = `stratus-e2e-tls-${randomBytes(4).toString("hex")}`;

const cleanup = new CleanupStack();
let net: NamespacePair;
let gateway: Gateway;
let fixture: TestDatabase;
let runtime: OwnedRuntime;
let work: string;
let alice: UserRow;
let bob: UserRow;
const volumeIds: Record<string, string> = {};

interface Device {
  id: string;
  dir: string;
}
const devices: Record<string, Device> = {};

const as = (user: UserRow): ServiceContext => ({ runtime, actor: { userId: user.id, via: "session", scope: "write" } });

async function writeDevice(name: string, created: Pick<CreatedDeviceCredential, "secret"> & { credential: { id: string } }): Promise<Device> {
  const dir = path.join(work, "devices", name);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const file of deviceFiles(created.secret)) await writeFile(path.join(dir, file.name), file.content, { mode: file.mode });
  return { id: created.credential.id, dir };
}

async function makeDevice(name: string, user: UserRow, options: { volumes?: string[]; expiresInDays?: number } = {}): Promise<Device> {
  const created = await createDeviceCredential(as(user), { name, ...options });
  devices[name] = await writeDevice(name, created);
  return devices[name]!;
}

const host = () => net.server.address;
const pskUri = (device: Device, exportName = "") => `nbds://${device.id}@${host()}:${gateway.nbdPort}/${exportName}?tls-psk-file=${device.dir}/keys.psk`;
const certUri = (device: Device, exportName = "") => `nbds://${host()}:${gateway.nbdPort}/${exportName}?tls-certificates=${device.dir}`;
/** qemu's --object for a device folder (tls-creds-psk reads keys.psk there; tls-creds-x509 the PEM files). */
const qemuObject = (device: Device, form: "psk" | "x509") =>
  form === "psk" ? `tls-creds-psk,id=tls0,endpoint=client,dir=${device.dir},username=${device.id}` : `tls-creds-x509,id=tls0,endpoint=client,dir=${device.dir}`;
const qemuImage = (exportName: string) => `driver=nbd,host=${host()},port=${gateway.nbdPort},export=${exportName},tls-creds=tls0`;

/** A command on the client machine. */
const client = (cmd: string, args: string[], timeoutMs = 60_000): Promise<RunResult> => net.client.run(cmd, args, { timeoutMs });
async function clientOk(cmd: string, args: string[], timeoutMs?: number): Promise<string> {
  const result = await client(cmd, args, timeoutMs);
  expect(result.code, `${cmd} ${args.join(" ")}\n${result.stderr}`).toBe(0);
  return result.stdout;
}
const listNames = async (uri: string) =>
  (JSON.parse(await clientOk("nbdinfo", ["--list", "--json", uri])) as { exports: { "export-name": string }[] }).exports.map((e) => e["export-name"]).sort();

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-tls-"));
  cleanup.push("remove the work folder", () => rm(work, { recursive: true, force: true }));
  net = await createNamespacePair("tls", "10.78.20");
  cleanup.push("delete the namespaces", () => net.remove());

  fixture = await createTestDatabase("postgres");
  cleanup.push("drop the database", () => fixture.dispose());
  const url = new URL((fixture.options as { url: string }).url);
  const socketDir = path.join(work, "pg");
  await mkdir(socketDir);
  const bridge = await bridgeUnixToTcp(path.join(socketDir, ".s.PGSQL.5432"), { host: url.hostname, port: Number(url.port) });
  cleanup.push("close the database bridge", () => bridge.close());

  const masterKey = randomBytes(32);
  gateway = await startGateway({
    netns: net.server.name,
    nbdHost: net.server.address,
    args: ["--no-web"],
    env: {
      DATABASE_URL: `postgres://postgres@localhost${url.pathname}?host=${socketDir}`,
      STRATUS_MASTER_KEY: masterKey.toString("base64"),
      STRATUS_QUEUE_PREFIX: QUEUE_PREFIX,
      STRATUS_CACHE_SIZE: "256M",
      STRATUS_DIRTY_LIMIT: "64M",
    },
  });
  cleanup.push("stop the gateway", () => gateway.dispose());

  // The control plane as the web process would run it: the same database, bucket and master key.
  runtime = await openRuntime({
    dataDir: path.join(work, "control"),
    database: fixture.options,
    store: { kind: "directory", root: gateway.bucketDir },
    redisUrl: "redis://127.0.0.1:6379",
    masterKey,
    settings: { prefix: QUEUE_PREFIX, gcGraceMs: 60_000, nbd: { host: net.server.address, port: gateway.nbdPort, tls: true }, embedded: false },
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  cleanup.push("close the control runtime", () => runtime.close());

  const db = runtime.database.db;
  alice = await insertAccount(db, { email: "alice@example.test", passwordHash: "scrypt$unused", isAdmin: false });
  bob = await insertAccount(db, { email: "bob@example.test", passwordHash: "scrypt$unused", isAdmin: false });
  for (const [user, name, size] of [
    [alice, "disk", "16M"],
    [alice, "scratch", "8M"],
    // Bob's volume has the same name as Alice's: export names are per owner.
    [bob, "disk", "4M"],
  ] as const) {
    const view = await createVolume(as(user), { name, size, chunkSize: "1M" });
    volumeIds[`${user.email}/${name}`] = view.id;
  }
  await makeDevice("alice-laptop", alice);
  await makeDevice("alice-limited", alice, { volumes: ["disk"] });
  await makeDevice("alice-expiring", alice, { expiresInDays: 1 });
  await makeDevice("alice-revoked", alice);
  await makeDevice("bob-desktop", bob);
}, 240_000);

afterAll(() => cleanup.runAll(), 120_000);

describe("NBD over TLS from another network namespace", () => {
  it.each(["psk", "x509"] as const)("nbdinfo, nbdcopy, qemu-img convert + compare and qemu-io work with a %s credential", async (form) => {
    const device = devices["alice-laptop"]!;
    const uri = (name: string) => (form === "psk" ? pskUri(device, name) : certUri(device, name));
    expect((await clientOk("nbdinfo", ["--size", uri("disk")])).trim()).toBe(String(16 * MiB));

    // nbdcopy there and back, byte for byte.
    const source = path.join(work, `${form}-source.img`);
    const back = path.join(work, `${form}-back.img`);
    await writeFile(source, randomBytes(8 * MiB));
    await clientOk("nbdcopy", ["--flush", source, uri("scratch")], 120_000);
    await clientOk("nbdcopy", [uri("scratch"), back], 120_000);
    expect((await readFile(back)).equals(await readFile(source))).toBe(true);

    // qemu-img reads the volume into a file, and qemu-img compare finds it identical to the source.
    const converted = path.join(work, `${form}-qemu.img`);
    await clientOk("qemu-img", ["convert", "--object", qemuObject(device, form), "--image-opts", qemuImage("scratch"), "-O", "raw", converted], 120_000);
    await clientOk("qemu-img", ["compare", "-f", "raw", "-F", "raw", source, converted]);

    const pattern = form === "psk" ? "0x5a" : "0xa5";
    const io = await clientOk("qemu-io", [
      "--object",
      qemuObject(device, form),
      "--image-opts",
      qemuImage("disk"),
      "-c",
      `write -P ${pattern} 1M 256k`,
      "-c",
      `read -P ${pattern} 1M 256k`,
      "-c",
      "flush",
    ]);
    expect(io).toMatch(/wrote 262144\/262144 bytes/);
    expect(io).toMatch(/read 262144\/262144 bytes/);
    expect(io).not.toMatch(/Pattern verification failed/);
  });

  it("nbdinfo --list lists exactly the credential's volumes", async () => {
    expect(await listNames(pskUri(devices["alice-laptop"]!))).toEqual(["disk", "scratch"]);
    expect(await listNames(certUri(devices["alice-laptop"]!))).toEqual(["disk", "scratch"]);
    expect(await listNames(pskUri(devices["alice-limited"]!))).toEqual(["disk"]);
    expect(await listNames(pskUri(devices["bob-desktop"]!))).toEqual(["disk"]);
    // Bob's "disk" is Bob's.
    expect((await clientOk("nbdinfo", ["--size", pskUri(devices["bob-desktop"]!, "disk")])).trim()).toBe(String(4 * MiB));
  });

  it("refuses what it must, each from the other namespace, and still serves a good client after", async () => {
    const alicesDevice = devices["alice-laptop"]!;
    const refused = async (what: string, cmd: string, args: string[]) => {
      const result = await client(cmd, args);
      expect(result.code, `${what} was served:\n${result.stdout}`).not.toBe(0);
      return result.stderr;
    };

    // No TLS at all: the server answers TLS_REQD to everything but STARTTLS.
    await refused("plaintext --list", "nbdinfo", ["--list", `nbd://${host()}:${gateway.nbdPort}`]);
    await refused("plaintext open", "nbdinfo", ["--size", `nbd://${host()}:${gateway.nbdPort}/disk`]);

    // A wrong PSK for a real identity, and an identity the deployment never issued.
    const wrongKey = path.join(work, "wrong.psk");
    await writeFile(wrongKey, `${alicesDevice.id}:${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
    await refused("a wrong PSK", "nbdinfo", ["--list", `nbds://${alicesDevice.id}@${host()}:${gateway.nbdPort}/?tls-psk-file=${wrongKey}`]);
    const stranger = path.join(work, "stranger.psk");
    await writeFile(stranger, `dev_${"x".repeat(20)}:${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
    await refused("an unknown identity", "nbdinfo", ["--list", `nbds://dev_${"x".repeat(20)}@${host()}:${gateway.nbdPort}/?tls-psk-file=${stranger}`]);

    // A client certificate for Alice's credential id, signed by a CA this deployment does not know.
    const otherCa = await createCertificateAuthority("not the deployment CA");
    const forged = await issueCertificate(
      await loadCertificateAuthority(otherCa.certPem, otherCa.keyPkcs8),
      { kind: "client", commonName: alicesDevice.id },
      new Date(Date.now() + 86_400_000),
    );
    const forgedDir = path.join(work, "forged");
    await mkdir(forgedDir, { mode: 0o700 });
    await writeFile(path.join(forgedDir, "ca-cert.pem"), await readFile(path.join(alicesDevice.dir, "ca-cert.pem")));
    await writeFile(path.join(forgedDir, "client-cert.pem"), forged.certPem);
    await writeFile(path.join(forgedDir, "client-key.pem"), forged.keyPem, { mode: 0o600 });
    await refused("a certificate from another CA", "nbdinfo", ["--list", `nbds://${host()}:${gateway.nbdPort}/?tls-certificates=${forgedDir}`]);

    // An expired credential (its expiry moved into the past, as time would), in both forms.
    const expiring = devices["alice-expiring"]!;
    expect(await listNames(pskUri(expiring))).toEqual(["disk", "scratch"]);
    await runtime.database.db
      .update(deviceCredentials)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(deviceCredentials.id, expiring.id));
    await refused("an expired PSK credential", "nbdinfo", ["--list", pskUri(expiring)]);
    await refused("an expired certificate credential", "nbdinfo", ["--list", certUri(expiring)]);

    // Bob names Alice's volume by name (he has no "scratch") and by id: both answer like a name that
    // exists nowhere, and his list never shows them.
    const bobs = devices["bob-desktop"]!;
    const nowhere = await refused("a name that exists nowhere", "nbdinfo", ["--size", pskUri(bobs, "nosuchvolume")]);
    const sameAs = (stderr: string, name: string) => expect(stderr.replaceAll(name, "NAME")).toBe(nowhere.replaceAll("nosuchvolume", "NAME"));
    sameAs(await refused("Alice's volume by name, to Bob", "nbdinfo", ["--size", pskUri(bobs, "scratch")]), "scratch");
    const aliceScratchId = volumeIds["alice@example.test/scratch"]!;
    sameAs(await refused("Alice's volume by id, to Bob", "nbdinfo", ["--size", pskUri(bobs, aliceScratchId)]), aliceScratchId);
    const bobsList = await listNames(pskUri(bobs));
    expect(bobsList).not.toContain("scratch");
    expect(bobsList).not.toContain(aliceScratchId);

    // A credential limited to "disk" asking for "scratch".
    sameAs(await refused("another volume, to a limited credential", "nbdinfo", ["--size", pskUri(devices["alice-limited"]!, "scratch")]), "scratch");

    // Revoked: an open connection of the credential is closed within seconds, and the next refused.
    const revoking = devices["alice-revoked"]!;
    const attached = spawn(net.client.prefix[0]!, [...net.client.prefix.slice(1), "nbdcopy", "--flush", "-", pskUri(revoking, "disk")], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => attached.once("close", resolve));
    cleanup.push("stop the attached nbdcopy", () => attached.kill("SIGKILL"));
    attached.stdin.on("error", () => undefined);
    attached.stdin.write(randomBytes(MiB));
    // The live state names the device while it is attached.
    const redis = new Redis({ path: path.join(gateway.dataDir, "redis.sock"), maxRetriesPerRequest: null });
    try {
      const live = await waitFor("the device in the volume's live state", async () => {
        const value = await redis.get(`${QUEUE_PREFIX}:live:${volumeIds["alice@example.test/disk"]}`);
        const clients = value ? (JSON.parse(value) as { clients: string[] }).clients : [];
        return clients.includes("alice-revoked") ? clients : undefined;
      });
      expect(live).toContain("alice-revoked");
    } finally {
      redis.disconnect();
    }
    await revokeDeviceCredential(as(alice), { id: revoking.id });
    // The gateway closes the connection within seconds (it rechecks open connections' credentials);
    // nbdcopy, blocked on its stdin, notices at its next write and fails.
    await waitFor(
      "the gateway to close the revoked credential's connection",
      () => gateway.logs().find((line) => line.msg === "nbd credential revoked or expired, closing its connection" && line.credentialId === revoking.id),
      { timeoutMs: 15_000 },
    );
    attached.stdin.end(randomBytes(MiB));
    expect(await exited).not.toBe(0);
    await refused("a revoked credential", "nbdinfo", ["--list", pskUri(revoking)]);

    // After all of that, a good client is served.
    expect((await clientOk("nbdinfo", ["--size", certUri(alicesDevice, "disk")])).trim()).toBe(String(16 * MiB));
    expect(await listNames(pskUri(alicesDevice))).toEqual(["disk", "scratch"]);
  });
});
