/**
 * The NBD server's certificate. STRATUS_NBD_TLS_CERT / _KEY when given (e.g. from a public CA); else a
 * certificate for STRATUS_NBD_PUBLIC_HOST (and the bind address) signed by the deployment's NBD CA,
 * kept in `<data dir>/tls/` (key 0600) and made again at start when the CA, the host names or the
 * remaining validity no longer fit. Client certificates are always checked against the deployment CA.
 */
import { X509Certificate } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import path from "node:path";
import { getNbdCa, issueNbdCertificate, StartupError, type Runtime } from "@stratus/control";
import type { GatewayConfig } from "../config/env";
import type { Logger } from "../logger";
import type { TlsServerCredentials } from "../server/tls-upgrade";

const DAY_MS = 86_400_000;
/** Lifetime of a made certificate, and how much of it must be left to keep using it. */
const LIFETIME_MS = 397 * DAY_MS;
const RENEW_BEFORE_MS = 30 * DAY_MS;

/** Addresses that name no particular interface: no certificate can be made for them. */
const WILDCARDS = new Set(["0.0.0.0", "::", "[::]"]);

export async function loadServerCertificate(
  config: Pick<GatewayConfig, "dataDir" | "nbd">,
  runtime: Pick<Runtime, "database" | "masterKey">,
  logger: Logger,
  now = new Date(),
): Promise<Omit<TlsServerCredentials, "pskKey">> {
  const ca = await getNbdCa(runtime);
  const { certFile, keyFile } = config.nbd.tls;
  if (certFile && keyFile) {
    const [certPem, keyPem] = await Promise.all([readPem(certFile, "STRATUS_NBD_TLS_CERT"), readPem(keyFile, "STRATUS_NBD_TLS_KEY")]);
    return { certPem, keyPem, caPem: ca.certPem };
  }
  const hosts = [...new Set([config.nbd.publicHost, config.nbd.host].filter((host) => !WILDCARDS.has(host)))];
  if (hosts.length === 0) {
    throw new StartupError(
      `STRATUS_NBD_HOST is ${config.nbd.host}: set STRATUS_NBD_PUBLIC_HOST to the name clients connect to, so the server certificate can name it`,
    );
  }
  const dir = path.join(config.dataDir, "tls");
  const certPath = path.join(dir, "server-cert.pem");
  const keyPath = path.join(dir, "server-key.pem");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const existing = await readExisting(certPath, keyPath);
  if (existing && fits(existing.certPem, ca.certPem, hosts, now)) {
    await chmod(keyPath, 0o600);
    return { ...existing, caPem: ca.certPem };
  }
  const issued = await issueNbdCertificate(runtime, { kind: "server", hosts }, new Date(now.getTime() + LIFETIME_MS));
  await writeFile(keyPath, issued.keyPem, { mode: 0o600 });
  await chmod(keyPath, 0o600);
  await writeFile(certPath, issued.certPem, { mode: 0o600 });
  logger.info({ file: certPath, hosts, caFingerprintSha256: ca.fingerprintSha256 }, "made an NBD server certificate from the deployment CA");
  return { certPem: issued.certPem, keyPem: issued.keyPem, caPem: ca.certPem };
}

async function readPem(file: string, variable: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    throw new StartupError(`${variable}: cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}

async function readExisting(certPath: string, keyPath: string): Promise<{ certPem: string; keyPem: string } | undefined> {
  try {
    return { certPem: await readFile(certPath, "utf8"), keyPem: await readFile(keyPath, "utf8") };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Still signed by this CA, naming every host, and valid for a while yet. */
function fits(certPem: string, caPem: string, hosts: string[], now: Date): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
    if (new Date(cert.validTo).getTime() - now.getTime() < RENEW_BEFORE_MS) return false;
    return hosts.every((host) => (isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined));
  } catch {
    // Not a certificate we can read: make a new one.
    return false;
  }
}
