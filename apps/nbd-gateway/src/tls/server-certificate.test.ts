/**
 * The server certificate the gateway makes from the deployment CA: for the public host and the bind
 * address, key 0600 in <data dir>/tls, kept across starts, made again when the host changes; a given
 * certificate and key are served as they are.
 */
import { X509Certificate } from "node:crypto";
import { readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { getNbdCa } from "@stratus/control";
import { openTestRuntime, type TestRuntime } from "@stratus/control/testing";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadGatewayConfig } from "../config/env";
import { loadServerCertificate } from "./server-certificate";

describe("the NBD server certificate", () => {
  let t: TestRuntime;
  const logger = pino({ level: "silent" });
  const configFor = (env: Record<string, string>) => loadGatewayConfig({ STRATUS_DATA_DIR: t.dataDir, ...env });

  beforeAll(async () => {
    t = await openTestRuntime("pglite");
  });
  afterAll(() => t?.dispose());

  it("is made from the deployment CA for the public host and the bind address, kept, and made again for a new host", async () => {
    const config = configFor({ STRATUS_NBD_HOST: "10.9.8.7", STRATUS_NBD_PUBLIC_HOST: "nbd.example.com" });
    const first = await loadServerCertificate(config, t.runtime, logger);
    const cert = new X509Certificate(first.certPem);
    const ca = new X509Certificate((await getNbdCa(t.runtime)).certPem);
    expect(new X509Certificate(first.caPem).fingerprint256).toBe(ca.fingerprint256);
    expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkHost("nbd.example.com")).toBe("nbd.example.com");
    expect(cert.checkIP("10.9.8.7")).toBe("10.9.8.7");
    const keyFile = path.join(t.dataDir, "tls", "server-key.pem");
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(t.dataDir, "tls"))).mode & 0o777).toBe(0o700);
    expect(await readFile(keyFile, "utf8")).toBe(first.keyPem);

    expect((await loadServerCertificate(config, t.runtime, logger)).certPem).toBe(first.certPem);
    const moved = await loadServerCertificate(configFor({ STRATUS_NBD_HOST: "10.9.8.7", STRATUS_NBD_PUBLIC_HOST: "other.example.com" }), t.runtime, logger);
    expect(moved.certPem).not.toBe(first.certPem);
    expect(new X509Certificate(moved.certPem).checkHost("other.example.com")).toBe("other.example.com");
    // Near its end it is made again too.
    const later = await loadServerCertificate(
      configFor({ STRATUS_NBD_HOST: "10.9.8.7", STRATUS_NBD_PUBLIC_HOST: "other.example.com" }),
      t.runtime,
      logger,
      new Date(Date.now() + 390 * 86_400_000),
    );
    expect(later.certPem).not.toBe(moved.certPem);
  });

  it("serves a given certificate and key as they are", async () => {
    const certFile = path.join(t.dataDir, "given-cert.pem");
    const keyFile = path.join(t.dataDir, "given-key.pem");
    await writeFile(certFile, "CERT PEM");
    await writeFile(keyFile, "KEY PEM");
    const given = await loadServerCertificate(configFor({ STRATUS_NBD_TLS_CERT: certFile, STRATUS_NBD_TLS_KEY: keyFile }), t.runtime, logger);
    expect(given).toMatchObject({ certPem: "CERT PEM", keyPem: "KEY PEM" });
    await expect(
      loadServerCertificate(configFor({ STRATUS_NBD_TLS_CERT: `${certFile}.missing`, STRATUS_NBD_TLS_KEY: keyFile }), t.runtime, logger),
    ).rejects.toThrow(/STRATUS_NBD_TLS_CERT: cannot read/);
  });

  it("asks for the public host when the bind address names none", async () => {
    await expect(loadServerCertificate(configFor({ STRATUS_NBD_HOST: "0.0.0.0" }), t.runtime, logger)).rejects.toThrow(/STRATUS_NBD_PUBLIC_HOST/);
  });
});
