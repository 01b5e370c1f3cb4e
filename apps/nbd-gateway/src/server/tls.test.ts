/**
 * NBD STARTTLS with real clients on 127.0.0.1: nbdinfo and nbdcopy (libnbd, GnuTLS) with a PSK file and
 * with client certificates, a raw client for the protocol's exact answers, and Node's TLS client for
 * a connection that stays open while its credential is revoked. The authority behind the server is a
 * test double (no database): which credential sees which in-memory registry.
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createCertificateAuthority, fingerprintOfPem, issueCertificate, loadCertificateAuthority, type IssuedCertificate } from "@stratus/control";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_LIST,
  NBD_OPT_STARTTLS,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
} from "../protocol/constants";
import { encodeInfoRequest } from "../protocol/handshake-frames";
import { MemoryDevice } from "../testing/memory-device";
import { MemoryExportRegistry } from "../testing/memory-export-registry";
import { run, runOk } from "../testing/nbd-tools";
import { RawNbdClient } from "../testing/raw-nbd-client";
import { createNbdServer, type AuthorizedClient, type NbdServer } from "./nbd-server";
import type { PresentedCredential } from "./tls-upgrade";

const MiB = 1024 * 1024;
const DAY = 86_400_000;

interface Fixture {
  dir: string;
  caPem: string;
  server: IssuedCertificate;
  /** Certificate folders libnbd reads (ca-cert.pem, client-cert.pem, client-key.pem). */
  aliceCerts: string;
  strangerCerts: string;
  alicePem: IssuedCertificate;
  pskFile(identity: string, key: Buffer): Promise<string>;
}

async function makeFixture(): Promise<Fixture> {
  const dir = await mkdtemp(path.join(tmpdir(), "stratus-tls-test-"));
  const ca = await createCertificateAuthority("test NBD CA");
  const authority = await loadCertificateAuthority(ca.certPem, ca.keyPkcs8);
  const later = new Date(Date.now() + DAY);
  const server = await issueCertificate(authority, { kind: "server", hosts: ["127.0.0.1"] }, later);
  const alicePem = await issueCertificate(authority, { kind: "client", commonName: "alice-cert" }, later);
  // A certificate for the same name from a CA nobody trusts.
  const other = await createCertificateAuthority("another CA");
  const stranger = await issueCertificate(await loadCertificateAuthority(other.certPem, other.keyPkcs8), { kind: "client", commonName: "alice-cert" }, later);
  const certFolder = async (name: string, client: IssuedCertificate) => {
    const folder = path.join(dir, name);
    await mkdir(folder);
    await writeFile(path.join(folder, "ca-cert.pem"), ca.certPem);
    await writeFile(path.join(folder, "client-cert.pem"), client.certPem);
    await writeFile(path.join(folder, "client-key.pem"), client.keyPem, { mode: 0o600 });
    return folder;
  };
  return {
    dir,
    caPem: ca.certPem,
    server,
    alicePem,
    aliceCerts: await certFolder("alice", alicePem),
    strangerCerts: await certFolder("stranger", stranger),
    pskFile: async (identity, key) => {
      const file = path.join(dir, `${identity}-${randomBytes(4).toString("hex")}.psk`);
      await writeFile(file, `${identity}:${key.toString("hex")}\n`, { mode: 0o600 });
      return file;
    },
  };
}

/** The gateway's authority, played by maps: PSK keys, certificate fingerprints, revocations. */
function testAuthority(f: Fixture, registries: Record<string, MemoryExportRegistry>) {
  const pskKeys = new Map<string, Buffer>([
    ["alice-psk", randomBytes(32)],
    ["bob-psk", randomBytes(32)],
  ]);
  const revoked = new Set<string>();
  const owner: Record<string, string> = { "alice-psk": "alice", "bob-psk": "bob", "alice-cert": "alice" };
  const aliceFingerprint = fingerprintOfPem(f.alicePem.certPem);
  const authorize = async (presented: PresentedCredential): Promise<AuthorizedClient | undefined> => {
    const id = "pskIdentity" in presented ? presented.pskIdentity : presented.certFingerprintSha256 === aliceFingerprint ? "alice-cert" : undefined;
    if (!id || revoked.has(id) || !owner[id]) return undefined;
    return { credentialId: id, registry: registries[owner[id]]! };
  };
  return {
    pskKeys,
    revoked,
    tls: {
      certPem: f.server.certPem,
      keyPem: f.server.keyPem,
      caPem: f.caPem,
      pskKey: (identity: string) => pskKeys.get(identity),
      authorize,
      unusable: async (ids: string[]) => ids.filter((id) => revoked.has(id)),
      // Far away: the tests call recheckCredentials() themselves.
      recheckIntervalMs: 3_600_000,
    },
  };
}

const exportNames = (json: string) => (JSON.parse(json) as { exports: { "export-name": string }[] }).exports.map((e) => e["export-name"]).sort();

describe("NBD over TLS, required", () => {
  let f: Fixture;
  let server: NbdServer;
  let port: number;
  let authority: ReturnType<typeof testAuthority>;
  const alice = new MemoryExportRegistry().add("a1", new MemoryDevice({ size: 16 * MiB }), "alice's first").add("a2", new MemoryDevice({ size: 4 * MiB }));
  const bob = new MemoryExportRegistry().add("b1", new MemoryDevice({ size: 4 * MiB }));
  const plaintext = new MemoryExportRegistry().add("local", new MemoryDevice({ size: 4 * MiB }));
  const pskUri = async (identity: string, exportName = "", key?: Buffer) =>
    `nbds://${identity}@127.0.0.1:${port}/${exportName}?tls-psk-file=${await f.pskFile(identity, key ?? authority.pskKeys.get(identity) ?? randomBytes(32))}`;
  const certUri = (folder: string, exportName = "") => `nbds://127.0.0.1:${port}/${exportName}?tls-certificates=${folder}`;

  beforeAll(async () => {
    f = await makeFixture();
    authority = testAuthority(f, { alice, bob });
    server = createNbdServer({
      registry: plaintext,
      tls: { mode: "require", ...authority.tls },
      logger: pino({ level: process.env.STRATUS_TEST_LOG_LEVEL ?? "silent" }),
    });
    port = (await server.listen(0, "127.0.0.1")).port;
  });
  afterAll(async () => {
    await server?.close();
    await rm(f.dir, { recursive: true, force: true });
  });

  it("answers every option but STARTTLS and ABORT with TLS_REQD, and ends EXPORT_NAME, before TLS", async () => {
    const client = await RawNbdClient.connect(port);
    await client.greet();
    for (const [option, data] of [
      [NBD_OPT_LIST, undefined],
      [NBD_OPT_GO, encodeInfoRequest("local", [])],
      [NBD_OPT_GO, encodeInfoRequest("a1", [])],
    ] as const) {
      const replies = await client.option(option, data);
      expect(replies.map((r) => r.replyType)).toEqual([NBD_REP_ERR_TLS_REQD]);
    }
    client.send(Buffer.concat([Buffer.from("IHAVEOPT"), Buffer.from([0, 0, 0, NBD_OPT_EXPORT_NAME, 0, 0, 0, 5]), Buffer.from("local")]));
    await client.closed;
    // libnbd without TLS gets nowhere either.
    expect((await run("nbdinfo", ["--list", `nbd://127.0.0.1:${port}`])).code).not.toBe(0);
  });

  it("lists and opens only what a PSK or certificate credential may use", async () => {
    expect(exportNames(await runOk("nbdinfo", ["--list", "--json", await pskUri("alice-psk")]))).toEqual(["a1", "a2"]);
    expect(exportNames(await runOk("nbdinfo", ["--list", "--json", await pskUri("bob-psk")]))).toEqual(["b1"]);
    expect(exportNames(await runOk("nbdinfo", ["--list", "--json", certUri(f.aliceCerts)]))).toEqual(["a1", "a2"]);
    expect((await runOk("nbdinfo", ["--size", certUri(f.aliceCerts, "a1")])).trim()).toBe(String(16 * MiB));
    // Bob naming Alice's export gets exactly what a name that exists nowhere gets.
    const theirs = await run("nbdinfo", ["--size", await pskUri("bob-psk", "a1")]);
    const nowhere = await run("nbdinfo", ["--size", await pskUri("bob-psk", "zz")]);
    expect(theirs.code).not.toBe(0);
    expect(theirs.stderr.replace(/a1/g, "X")).toBe(nowhere.stderr.replace(/zz/g, "X"));
    expect(theirs.stderr).toMatch(/unknown|not.*exist|No such/i);
  });

  it("moves data byte for byte over TLS (nbdcopy there and back)", async () => {
    const source = path.join(f.dir, "source.bin");
    const back = path.join(f.dir, "back.bin");
    await writeFile(source, randomBytes(16 * MiB));
    await runOk("nbdcopy", ["--flush", source, await pskUri("alice-psk", "a1")], 60_000);
    await runOk("nbdcopy", [certUri(f.aliceCerts, "a1"), back], 60_000);
    expect((await readFile(back)).equals(await readFile(source))).toBe(true);
  });

  it("refuses a wrong PSK, an unknown identity, a certificate of another CA and a refused credential; then still serves", async () => {
    expect((await run("nbdinfo", ["--list", await pskUri("alice-psk", "", randomBytes(32))])).code).not.toBe(0);
    expect((await run("nbdinfo", ["--list", await pskUri("mallory")])).code).not.toBe(0);
    expect((await run("nbdinfo", ["--list", certUri(f.strangerCerts)])).code).not.toBe(0);
    authority.revoked.add("bob-psk");
    try {
      expect((await run("nbdinfo", ["--list", await pskUri("bob-psk")])).code).not.toBe(0);
    } finally {
      authority.revoked.delete("bob-psk");
    }
    expect(exportNames(await runOk("nbdinfo", ["--list", "--json", await pskUri("alice-psk")]))).toEqual(["a1", "a2"]);
  });

  it("answers a second STARTTLS with INVALID and closes a revoked credential's open connection at the next check", async () => {
    const client = await RawNbdClient.connect(port);
    await client.greet();
    await client.startTls({ ca: f.caPem, cert: f.alicePem.certPem, key: f.alicePem.keyPem, servername: undefined, checkServerIdentity: () => undefined });
    expect((await client.option(NBD_OPT_STARTTLS)).map((r) => r.replyType)).toEqual([NBD_REP_ERR_INVALID]);
    expect((await client.option(NBD_OPT_GO, encodeInfoRequest("b1", []))).map((r) => r.replyType)).toEqual([NBD_REP_ERR_UNKNOWN]);
    await client.goTo("a1", { greeted: true });
    expect(await server.recheckCredentials()).toBe(0);
    expect(client.isClosed).toBe(false);
    authority.revoked.add("alice-cert");
    try {
      expect(await server.recheckCredentials()).toBe(1);
      await client.closed;
    } finally {
      authority.revoked.delete("alice-cert");
    }
  });
});

describe("NBD over TLS, connections per credential", () => {
  it("refuses a credential's connection past its cap", async () => {
    const f = await makeFixture();
    const authority = testAuthority(f, { alice: new MemoryExportRegistry().add("a1", new MemoryDevice({ size: MiB })), bob: new MemoryExportRegistry() });
    const server = createNbdServer({
      registry: new MemoryExportRegistry(),
      tls: { mode: "require", ...authority.tls },
      maxConnectionsPerCredential: 2,
      logger: pino({ level: "silent" }),
    });
    const { port } = await server.listen(0, "127.0.0.1");
    const tlsOptions = { ca: f.caPem, cert: f.alicePem.certPem, key: f.alicePem.keyPem, checkServerIdentity: () => undefined };
    try {
      const open = await Promise.all(
        [0, 1].map(async () => {
          const client = await RawNbdClient.connect(port);
          await client.greet();
          await client.startTls(tlsOptions);
          await client.goTo("a1", { greeted: true });
          return client;
        }),
      );
      const third = await RawNbdClient.connect(port);
      await third.greet();
      await third.startTls(tlsOptions).catch(() => undefined);
      expect(await third.option(NBD_OPT_LIST)).toEqual([]);
      await third.closed;
      for (const client of open) expect(client.isClosed).toBe(false);
      open[0]!.close();
      await open[0]!.closed;
    } finally {
      await server.close();
      await rm(f.dir, { recursive: true, force: true });
    }
  });
});

describe("NBD over TLS, optional (loopback)", () => {
  let f: Fixture;
  let server: NbdServer;
  let port: number;
  let authority: ReturnType<typeof testAuthority>;
  const alice = new MemoryExportRegistry().add("a1", new MemoryDevice({ size: 4 * MiB }));
  const plaintext = new MemoryExportRegistry().add("local", new MemoryDevice({ size: 4 * MiB }));

  beforeAll(async () => {
    f = await makeFixture();
    authority = testAuthority(f, { alice, bob: new MemoryExportRegistry() });
    server = createNbdServer({
      registry: plaintext,
      tls: { mode: "optional", ...authority.tls },
      logger: pino({ level: process.env.STRATUS_TEST_LOG_LEVEL ?? "silent" }),
    });
    port = (await server.listen(0, "127.0.0.1")).port;
  });
  afterAll(async () => {
    await server?.close();
    await rm(f.dir, { recursive: true, force: true });
  });

  it("serves plaintext clients the plaintext registry and TLS clients their credential's", async () => {
    expect(exportNames(await runOk("nbdinfo", ["--list", "--json", `nbd://127.0.0.1:${port}`]))).toEqual(["local"]);
    const psk = await f.pskFile("alice-psk", authority.pskKeys.get("alice-psk")!);
    expect(exportNames(await runOk("nbdinfo", ["--list", "--json", `nbds://alice-psk@127.0.0.1:${port}/?tls-psk-file=${psk}`]))).toEqual(["a1"]);
  });
});

describe("NBD without TLS", () => {
  it("answers STARTTLS with POLICY", async () => {
    const server = createNbdServer({ registry: new MemoryExportRegistry(), logger: pino({ level: process.env.STRATUS_TEST_LOG_LEVEL ?? "silent" }) });
    const { port } = await server.listen(0, "127.0.0.1");
    try {
      const client = await RawNbdClient.connect(port);
      await client.greet();
      expect((await client.option(NBD_OPT_STARTTLS)).map((r) => r.replyType)).toEqual([NBD_REP_ERR_POLICY]);
      expect((await client.option(NBD_OPT_LIST)).map((r) => r.replyType)).toEqual([NBD_REP_ACK]);
      client.close();
    } finally {
      await server.close();
    }
  });
});
