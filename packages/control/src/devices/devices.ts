/**
 * Device credentials: one per device a user attaches volumes from over NBD with TLS. Each works both as
 * TLS-PSK (identity = the id, key derived from the master key) and as an X.509 client certificate
 * signed by the deployment's NBD CA. The secret parts are returned once, at creation, and kept nowhere;
 * the row holds the name, the volume limit, the expiry and the certificate's fingerprint.
 */
import {
  DbError,
  insertDeviceCredential,
  listDeviceCredentialRows,
  listVolumes,
  newId,
  revokeDeviceCredentialRow,
  type DeviceCredentialRow,
  type VolumeRow,
} from "@stratus/db";
import * as z from "zod";
import { recordActivity } from "../activity/activity";
import { requireWrite, type ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { parseInput } from "../volumes/volumes";
import { CLIENT_CERT_LIFETIME_MS } from "./certificates";
import { issueNbdCertificate } from "./nbd-ca";
import { derivePskKey, pskFileLine } from "./psk";

export const createDeviceCredentialInput = z.object({
  name: z.string().trim().min(1, "give the device a name").max(64, "at most 64 characters"),
  /** Names of the caller's volumes this device may use; absent: all of them, including later ones. */
  volumes: z.array(z.string()).optional(),
  /** Days until it expires; absent: never. */
  expiresInDays: z.number().int().min(1).max(3650).optional(),
});
export type CreateDeviceCredentialInput = z.input<typeof createDeviceCredentialInput>;

export interface DeviceCredentialView {
  id: string;
  name: string;
  /** Volume names; null = all the user's volumes. */
  volumes: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  status: "active" | "expired" | "revoked";
  certFingerprintSha256: string;
}

export interface CreatedDeviceCredential {
  credential: DeviceCredentialView;
  /** Shown or downloaded once; never logged or stored. */
  secret: {
    /** = credential.id */
    pskIdentity: string;
    pskKeyHex: string;
    /** "<identity>:<hexkey>\n" (the libnbd / qemu / nbdkit PSK file format). */
    pskFile: string;
    clientCertPem: string;
    clientKeyPem: string;
    caCertPem: string;
  };
}

export function deviceCredentialStatus(row: Pick<DeviceCredentialRow, "revokedAt" | "expiresAt">, now = new Date()): DeviceCredentialView["status"] {
  return row.revokedAt ? "revoked" : row.expiresAt && row.expiresAt <= now ? "expired" : "active";
}

/** `volumeNames`: id -> name of the owner's volumes (ids of deleted volumes drop out of the list). */
export function deviceCredentialView(row: DeviceCredentialRow, volumeNames: ReadonlyMap<string, string>, now = new Date()): DeviceCredentialView {
  return {
    id: row.id,
    name: row.name,
    volumes: row.volumeIds === null ? null : row.volumeIds.flatMap((id) => (volumeNames.has(id) ? [volumeNames.get(id)!] : [])),
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt?.toISOString() ?? null,
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    revokedAt: row.revokedAt?.toISOString() ?? null,
    status: deviceCredentialStatus(row, now),
    certFingerprintSha256: row.certFingerprintSha256,
  };
}

const namesById = (rows: VolumeRow[]) => new Map(rows.map((row) => [row.id, row.name]));

/** The caller's active volumes with these names, in the given order; any unknown name is NOT_FOUND. */
function resolveVolumeNames(owned: VolumeRow[], names: string[]): string[] {
  const byName = new Map(owned.filter((row) => row.state === "active").map((row) => [row.name, row.id]));
  const ids: string[] = [];
  for (const name of names) {
    const id = byName.get(name.trim());
    if (!id) throw new ServiceError("NOT_FOUND", `no volume named ${name}`, { field: "volumes" });
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}

export async function createDeviceCredential(ctx: ServiceContext, input: CreateDeviceCredentialInput): Promise<CreatedDeviceCredential> {
  requireWrite(ctx);
  const parsed = parseInput(createDeviceCredentialInput, input);
  const { runtime, actor } = ctx;
  const db = runtime.database.db;
  const owned = await listVolumes(db, actor.userId);
  const volumeIds = parsed.volumes === undefined ? null : resolveVolumeNames(owned, parsed.volumes);
  const now = new Date();
  const expiresAt = parsed.expiresInDays ? new Date(now.getTime() + parsed.expiresInDays * 86_400_000) : null;
  const id = newId("device");
  // The certificate outlives nothing the database allows: it ends with the credential (or in 10 years;
  // a credential that never expires is checked against its row at every handshake anyway).
  const cert = await issueNbdCertificate(runtime, { kind: "client", commonName: id }, expiresAt ?? new Date(now.getTime() + CLIENT_CERT_LIFETIME_MS));
  let row: DeviceCredentialRow;
  try {
    row = await insertDeviceCredential(db, {
      id,
      userId: actor.userId,
      name: parsed.name,
      volumeIds,
      expiresAt,
      certFingerprintSha256: cert.fingerprintSha256,
      certSerial: cert.serial,
    });
  } catch (error) {
    if (error instanceof DbError && error.code === "DEVICE_NAME_TAKEN")
      throw new ServiceError("CONFLICT", `a device named ${parsed.name} already exists`, { field: "name", cause: error });
    throw error;
  }
  const credential = deviceCredentialView(row, namesById(owned), now);
  await recordActivity(ctx, {
    ownerId: actor.userId,
    action: "device.create",
    detail: { deviceId: id, name: parsed.name, volumes: credential.volumes, expiresAt: credential.expiresAt },
  });
  const key = derivePskKey(runtime.masterKey.key, id);
  return {
    credential,
    secret: {
      pskIdentity: id,
      pskKeyHex: key.toString("hex"),
      pskFile: pskFileLine(id, key),
      clientCertPem: cert.certPem,
      clientKeyPem: cert.keyPem,
      caCertPem: cert.caCertPem,
    },
  };
}

export async function listDeviceCredentials(ctx: ServiceContext): Promise<DeviceCredentialView[]> {
  const db = ctx.runtime.database.db;
  const [rows, owned] = await Promise.all([listDeviceCredentialRows(db, ctx.actor.userId), listVolumes(db, ctx.actor.userId)]);
  const names = namesById(owned);
  const now = new Date();
  return rows.map((row) => deviceCredentialView(row, names, now));
}

export async function revokeDeviceCredential(ctx: ServiceContext, input: { id: string }): Promise<DeviceCredentialView> {
  requireWrite(ctx);
  const db = ctx.runtime.database.db;
  const row = await revokeDeviceCredentialRow(db, ctx.actor.userId, input.id);
  // Another user's credential, an unknown id and an already revoked one all look the same.
  if (!row) throw new ServiceError("NOT_FOUND", "no such active device credential");
  await recordActivity(ctx, { ownerId: ctx.actor.userId, action: "device.revoke", detail: { deviceId: row.id, name: row.name } });
  return deviceCredentialView(row, namesById(await listVolumes(db, ctx.actor.userId)));
}
