/**
 * The NBD server's authority over TLS clients, backed by device credentials in the database: the PSK
 * of an identity (derived from the master key, never stored), whose credential a handshake proved
 * and what it may list and open (its owner's volumes, limited to its list), and which open
 * connections' credentials have since been revoked or expired.
 */
import { authorizeDeviceCredential, derivePskKey } from "@stratus/control";
import { findUnusableDeviceCredentials, isId, type Db } from "@stratus/db";
import type { VolumeEngines } from "../engine/volume-engines";
import type { NbdServerTlsOptions } from "../server/nbd-server";

export interface DeviceAuthorityOptions {
  db: Db;
  masterKey: Buffer;
  engines: Pick<VolumeEngines, "forScope">;
  /** The clock expiry is judged by (tests move it). */
  now?: () => Date;
}

export function deviceAuthority(options: DeviceAuthorityOptions): Pick<NbdServerTlsOptions, "pskKey" | "authorize" | "unusable"> {
  const now = options.now ?? (() => new Date());
  return {
    // Any well-formed id gets its derived key: whether the credential exists is the database's
    // answer in authorize(), after the handshake, so a guessed id learns nothing from the handshake.
    pskKey: (identity) => (isId("device", identity) ? derivePskKey(options.masterKey, identity) : undefined),
    authorize: async (presented) => {
      const access = await authorizeDeviceCredential(options.db, presented, now());
      if (!access) return undefined;
      return {
        credentialId: access.credentialId,
        registry: options.engines.forScope({
          ownerId: access.userId,
          volumeIds: access.volumeIds,
          client: access.name,
          deviceCredentialId: access.credentialId,
        }),
      };
    },
    unusable: (ids) => findUnusableDeviceCredentials(options.db, ids, now()),
  };
}
