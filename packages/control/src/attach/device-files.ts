/**
 * One folder per device credential, laid out so that every standard client reads it as it is:
 * qemu's tls-creds-psk wants `keys.psk` in its dir, tls-creds-x509 and libnbd's tls-certificates want
 * ca-cert.pem, client-cert.pem and client-key.pem; libnbd's tls-psk-file and nbd-client's
 * -certfile/-keyfile/-cacertfile take the files by path. The dashboard's download, the CLI and the
 * printed commands all use this layout, by default under ~/.config/stratus/devices/NAME.
 */
import { HOME_DIR, type Word } from "./shell-words";

export const DEVICE_FILE_NAMES = {
  psk: "keys.psk",
  caCert: "ca-cert.pem",
  clientCert: "client-cert.pem",
  clientKey: "client-key.pem",
} as const;

/** The secret half of a new credential, as createDeviceCredential returns it (shown once). */
export interface DeviceSecretFiles {
  pskFile: string;
  caCertPem: string;
  clientCertPem: string;
  clientKeyPem: string;
}

export interface DeviceFile {
  name: string;
  content: string;
  /** Keys 0600; the CA certificate is public. */
  mode: number;
}

/** The files of a device folder (written by the CLI, bundled by the dashboard). */
export function deviceFiles(secret: DeviceSecretFiles): DeviceFile[] {
  return [
    { name: DEVICE_FILE_NAMES.psk, content: secret.pskFile, mode: 0o600 },
    { name: DEVICE_FILE_NAMES.clientKey, content: secret.clientKeyPem, mode: 0o600 },
    { name: DEVICE_FILE_NAMES.clientCert, content: secret.clientCertPem, mode: 0o600 },
    { name: DEVICE_FILE_NAMES.caCert, content: secret.caCertPem, mode: 0o644 },
  ];
}

/** A credential name as a folder name: what is not [A-Za-z0-9._-] becomes "-". */
export function deviceFolderName(name: string): string {
  const safe = name
    .trim()
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/^[.-]+/, "");
  return safe === "" ? "device" : safe;
}

/** The default folder, relative to the home directory: ~/.config/stratus/devices/NAME. */
export function defaultDeviceDir(name: string): Word {
  return [HOME_DIR, `/.config/stratus/devices/${deviceFolderName(name)}`];
}
