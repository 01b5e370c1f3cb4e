/**
 * The deployment's NBD CA, kept in the database (`deployment_keys`, kind 'nbd-ca') so every gateway and
 * web process that shares DATABASE_URL and the master key signs with the same one. Its private key is
 * stored sealed: AES-256-GCM under a key derived from the master key (HKDF), the row's kind as
 * additional data. Created on first use; when two processes race, both keep the first one stored.
 */
import { hkdfSync } from "node:crypto";
import { findDeploymentKey, insertDeploymentKeyOnce, type DeploymentKeyRow } from "@stratus/db";
import type { Runtime } from "../context";
import { ServiceError } from "../errors";
import { openBox, sealBox } from "../keys/sealed-box";
import {
  createCertificateAuthority,
  issueCertificate,
  loadCertificateAuthority,
  type CertificateAuthority,
  type CertificateSubject,
  type IssuedCertificate,
} from "./certificates";

const KIND = "nbd-ca";
const SEAL_VERSION = 1;
const aad = (kind: string) => Buffer.from(`stratus deployment key v${SEAL_VERSION} ${kind}`);

function sealingKey(masterKey: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", masterKey, Buffer.alloc(0), "stratus deployment key sealing v1", 32));
}

export function sealDeploymentKey(masterKey: Buffer, kind: string, plain: Buffer): string {
  return sealBox(sealingKey(masterKey), SEAL_VERSION, aad(kind), plain);
}

/** The plain key, or undefined when it does not open with this master key (or was tampered with). */
export function openDeploymentKey(masterKey: Buffer, kind: string, sealed: string): Buffer | undefined {
  return openBox(sealingKey(masterKey), SEAL_VERSION, aad(kind), sealed);
}

async function ensureCaRow(runtime: Pick<Runtime, "database" | "masterKey">): Promise<DeploymentKeyRow> {
  const db = runtime.database.db;
  const existing = await findDeploymentKey(db, KIND);
  if (existing) return existing;
  const created = await createCertificateAuthority("Stratus NBD CA");
  return insertDeploymentKeyOnce(db, {
    kind: KIND,
    certPem: created.certPem,
    sealedKey: sealDeploymentKey(runtime.masterKey.key, KIND, created.keyPkcs8),
    fingerprintSha256: created.fingerprintSha256,
  });
}

/** The CA certificate users trust (downloaded with a credential, shown with its fingerprint). */
export async function getNbdCa(runtime: Pick<Runtime, "database" | "masterKey">): Promise<{ certPem: string; fingerprintSha256: string }> {
  const row = await ensureCaRow(runtime);
  return { certPem: row.certPem, fingerprintSha256: row.fingerprintSha256 };
}

/** The CA with its private key, to sign with. */
export async function loadNbdCa(
  runtime: Pick<Runtime, "database" | "masterKey">,
): Promise<CertificateAuthority & { certPem: string; fingerprintSha256: string }> {
  const row = await ensureCaRow(runtime);
  const key = openDeploymentKey(runtime.masterKey.key, KIND, row.sealedKey);
  if (!key) {
    // Not a user's mistake to fix in a form: this process has a different master key than the one
    // that created the CA. Said plainly so an operator can tell.
    throw new ServiceError("CONFLICT", "the deployment's NBD CA does not open with this process's master key (STRATUS_MASTER_KEY differs between processes?)");
  }
  return { ...(await loadCertificateAuthority(row.certPem, key)), certPem: row.certPem, fingerprintSha256: row.fingerprintSha256 };
}

/** A certificate signed by the deployment's NBD CA. */
export async function issueNbdCertificate(
  runtime: Pick<Runtime, "database" | "masterKey">,
  subject: CertificateSubject,
  notAfter: Date,
): Promise<IssuedCertificate & { caCertPem: string }> {
  const ca = await loadNbdCa(runtime);
  return { ...(await issueCertificate(ca, subject, notAfter)), caCertPem: ca.certPem };
}
