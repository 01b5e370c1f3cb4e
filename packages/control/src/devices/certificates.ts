/**
 * X.509 for NBD over TLS: the deployment's CA, the client certificates of device credentials and the
 * gateways' server certificates. ECDSA P-256 with SHA-256 throughout (every TLS stack NBD clients use
 * accepts it). Pure: keys and certificates in, PEM out; storing them is nbd-ca.ts's job.
 */
import { X509Certificate, createHash, randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import type * as X509 from "@peculiar/x509";

type CryptoKey = webcrypto.CryptoKey;
/** Node's webcrypto, typed as the library's provider (this repository compiles without the DOM lib). */
const crypto = webcrypto as unknown as NonNullable<Parameters<typeof X509.X509CertificateGenerator.createSelfSigned>[1]>;

let library: Promise<typeof X509> | undefined;
/**
 * The X.509 library, loaded on first use: it costs about a second of start-up, which every process that
 * imports @stratus/control (the CLI included) would otherwise pay. It resolves its algorithm registry
 * through tsyringe, which needs the Reflect API first.
 */
function x509(): Promise<typeof X509> {
  library ??= import("reflect-metadata").then(() => import("@peculiar/x509"));
  return library;
}
const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
/** Issued a little in the past so a client whose clock runs behind does not see "not yet valid". */
const CLOCK_SKEW_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
export const CA_LIFETIME_MS = 20 * 365 * DAY_MS;
/** A client certificate of a credential that never expires (the database decides, at every handshake). */
export const CLIENT_CERT_LIFETIME_MS = 10 * 365 * DAY_MS;

export interface CertificateAuthority {
  cert: X509.X509Certificate;
  key: CryptoKey;
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  /** Lowercase hex SHA-256 of the certificate's DER. */
  fingerprintSha256: string;
  /** Hex serial number. */
  serial: string;
}

export const fingerprintOfDer = (der: Uint8Array): string => createHash("sha256").update(der).digest("hex");

export function fingerprintOfPem(pem: string): string {
  return fingerprintOfDer(new X509Certificate(pem).raw);
}

/** A positive 128-bit serial (RFC 5280 wants positive and unique; random makes unique a non-issue). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString("hex");
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  return (await x509()).PemConverter.encode(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

export async function createCertificateAuthority(
  commonName: string,
  now = new Date(),
): Promise<{ certPem: string; keyPkcs8: Buffer; fingerprintSha256: string }> {
  const x = await x509();
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const cert = await x.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: [{ CN: [commonName] }],
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter: new Date(now.getTime() + CA_LIFETIME_MS),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x.BasicConstraintsExtension(true, 0, true),
        new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign, true),
        await x.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return {
    certPem: cert.toString("pem"),
    keyPkcs8: Buffer.from(await crypto.subtle.exportKey("pkcs8", keys.privateKey)),
    fingerprintSha256: fingerprintOfDer(new Uint8Array(cert.rawData)),
  };
}

export async function loadCertificateAuthority(certPem: string, keyPkcs8: Buffer): Promise<CertificateAuthority> {
  const key = await crypto.subtle.importKey("pkcs8", new Uint8Array(keyPkcs8), ALGORITHM, false, ["sign"]);
  return { cert: new (await x509()).X509Certificate(certPem), key };
}

export type CertificateSubject =
  /** A device credential's client certificate: CN = the credential id. */
  | { kind: "client"; commonName: string }
  /** A gateway's server certificate, valid for these host names and IP addresses. */
  | { kind: "server"; hosts: string[] };

export async function issueCertificate(ca: CertificateAuthority, subject: CertificateSubject, notAfter: Date, now = new Date()): Promise<IssuedCertificate> {
  const x = await x509();
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const serial = randomSerial();
  const extensions: X509.Extension[] = [
    new x.BasicConstraintsExtension(false, undefined, true),
    new x.KeyUsagesExtension(x.KeyUsageFlags.digitalSignature, true),
    new x.ExtendedKeyUsageExtension([subject.kind === "client" ? x.ExtendedKeyUsage.clientAuth : x.ExtendedKeyUsage.serverAuth], false),
    await x.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
    await x.AuthorityKeyIdentifierExtension.create(ca.cert, false, crypto),
  ];
  if (subject.kind === "server") {
    extensions.push(
      new x.SubjectAlternativeNameExtension(
        subject.hosts.map((host): X509.JsonGeneralName => ({ type: isIP(host) ? "ip" : "dns", value: host })),
        false,
      ),
    );
  }
  const cert = await x.X509CertificateGenerator.create(
    {
      serialNumber: serial,
      subject: [{ CN: [subject.kind === "client" ? subject.commonName : subject.hosts[0]!] }],
      issuer: ca.cert.subjectName,
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter,
      publicKey: keys.publicKey,
      signingKey: ca.key,
      signingAlgorithm: ALGORITHM,
      extensions,
    },
    crypto,
  );
  return {
    certPem: cert.toString("pem"),
    keyPem: await exportKeyPem(keys.privateKey),
    fingerprintSha256: fingerprintOfDer(new Uint8Array(cert.rawData)),
    serial,
  };
}
