/**
 * The TLS attach commands for one volume and one device credential, for each standard client, in both
 * forms a credential works in: TLS-PSK (identity = the credential id, key file `identity:hexkey`) and
 * an X.509 client certificate signed by the deployment CA. Pure: the web, REST and CLI print these,
 * and the CLI runs the same words (argv) for nbdfuse and nbd-client.
 *
 * Syntax checked against the tools on Debian 12: libnbd 1.14's nbd_connect_uri (`nbds://USER@HOST:PORT/
 * EXPORT?tls-psk-file=FILE` or `?tls-certificates=DIR`), qemu 7.2's `--object tls-creds-psk|tls-creds-x509`
 * with `--image-opts driver=nbd,…,tls-creds=ID`, nbd-client 3.24's `-N -certfile -keyfile -cacertfile`.
 */
import { DEVICE_FILE_NAMES } from "./device-files";
import { concat, HOME_DIR, mapText, shellCommand, type Word } from "./shell-words";

export interface NbdEndpoint {
  host: string;
  port: number;
}

export interface DeviceCredentialRef {
  /** The credential id: the TLS-PSK identity. */
  id: string;
  name: string;
  /** Its folder (DEVICE_FILE_NAMES inside). */
  dir: Word;
}

export type TlsForm = "psk" | "x509";
export type AttachTool = "nbdinfo" | "nbdcopy" | "qemu-img" | "qemu" | "nbd-client" | "nbdfuse" | "stratus";

export interface TlsAttachCommand {
  /** Stable id for the UI and tests, e.g. `nbdinfo-psk`. */
  id: string;
  tool: AttachTool;
  form: TlsForm;
  label: string;
  /** Ready to paste into a shell. */
  command: string;
  words: Word[];
}

/** The qemu object id the commands name their credentials by. */
export const QEMU_TLS_OBJECT_ID = "stratus-tls0";

const file = (dir: Word, name: string): Word => concat(dir, `/${name}`);

/** A URI path or query value: percent-encode what libnbd's URI parser would misread. */
const uriText = (text: string) => text.replace(/[^A-Za-z0-9/._~-]/g, (c) => encodeURIComponent(c));

/** qemu option values: a comma is written twice. */
const qemuText = (text: string) => text.replace(/,/g, ",,");

function hostInUri(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/** `nbds://…` for libnbd clients (nbdinfo, nbdcopy, nbdfuse, nbdsh). Without an export: the server (for --list). */
export function tlsUri(endpoint: NbdEndpoint, exportName: string | undefined, device: DeviceCredentialRef, form: TlsForm): Word {
  const user = form === "psk" ? `${encodeURIComponent(device.id)}@` : "";
  const base = `nbds://${user}${hostInUri(endpoint.host)}:${endpoint.port}/${exportName === undefined ? "" : encodeURIComponent(exportName)}`;
  const query = form === "psk" ? "?tls-psk-file=" : "?tls-certificates=";
  const target = form === "psk" ? file(device.dir, DEVICE_FILE_NAMES.psk) : device.dir;
  return concat(base, query, mapText(target, uriText));
}

/** `--object tls-creds-…` value for qemu (qemu-img, qemu-io, qemu-system). */
export function qemuTlsObject(device: DeviceCredentialRef, form: TlsForm): Word {
  const dir = mapText(device.dir, qemuText);
  return form === "psk"
    ? concat(`tls-creds-psk,id=${QEMU_TLS_OBJECT_ID},endpoint=client,dir=`, dir, `,username=${qemuText(device.id)}`)
    : concat(`tls-creds-x509,id=${QEMU_TLS_OBJECT_ID},endpoint=client,dir=`, dir);
}

/** `driver=nbd,…` image options naming the TLS object. */
export function qemuImageOptions(endpoint: NbdEndpoint, exportName: string): string {
  return `driver=nbd,host=${qemuText(endpoint.host)},port=${endpoint.port},export=${qemuText(exportName)},tls-creds=${QEMU_TLS_OBJECT_ID}`;
}

/** nbd-client (the Linux kernel client) with the X.509 form; it has no TLS-PSK. */
export function nbdClientWords(endpoint: NbdEndpoint, exportName: string, device: DeviceCredentialRef, nbdDevice = "/dev/nbd0"): Word[] {
  return [
    "nbd-client",
    endpoint.host,
    String(endpoint.port),
    nbdDevice,
    "-N",
    exportName,
    "-certfile",
    file(device.dir, DEVICE_FILE_NAMES.clientCert),
    "-keyfile",
    file(device.dir, DEVICE_FILE_NAMES.clientKey),
    "-cacertfile",
    file(device.dir, DEVICE_FILE_NAMES.caCert),
  ];
}

/**
 * nbdfuse exposing the volume as MOUNTDIR/disk.img over TLS-PSK. libnbd 1.14 refuses file paths in a
 * URI (tls-psk-file, tls-certificates) unless the program allows them; nbdinfo and nbdcopy do, nbdfuse
 * does not. So nbdfuse talks to nbdkit's nbd plugin over a socket pair, and that makes the TLS connection
 * with the PSK file given as a parameter (--exit-with-parent: it goes when nbdfuse does).
 */
export function nbdfuseWords(endpoint: NbdEndpoint, exportName: string, device: DeviceCredentialRef, mountDir: Word, pidFile?: string): Word[] {
  return [
    "nbdfuse",
    ...(pidFile ? ["-P", pidFile] : []),
    concat(mountDir, "/disk.img"),
    "--command",
    "nbdkit",
    "-s",
    "--exit-with-parent",
    "nbd",
    `hostname=${endpoint.host}`,
    `port=${endpoint.port}`,
    `export=${exportName}`,
    "tls=require",
    concat("tls-psk=", file(device.dir, DEVICE_FILE_NAMES.psk)),
    `tls-username=${device.id}`,
  ];
}

/** Every command for one volume and device, PSK first (it needs no server-name check). */
export function tlsAttachCommands(endpoint: NbdEndpoint, exportName: string, device: DeviceCredentialRef): TlsAttachCommand[] {
  const out: TlsAttachCommand[] = [];
  const add = (tool: AttachTool, form: TlsForm, label: string, words: Word[]) =>
    out.push({ id: `${tool}-${form}`, tool, form, label, command: shellCommand(words), words });

  add("stratus", "psk", "A file backed by the volume (stratus CLI with STRATUS_URL and STRATUS_TOKEN; stratus detach undoes it)", [
    "stratus",
    "attach",
    exportName,
    "--device",
    device.name,
    "--fuse",
    [HOME_DIR, `/stratus/${exportName}`],
  ]);
  for (const form of ["psk", "x509"] as const) {
    const how = form === "psk" ? "TLS-PSK" : "client certificate";
    add("nbdinfo", form, `Inspect (libnbd nbdinfo, ${how})`, ["nbdinfo", tlsUri(endpoint, exportName, device, form)]);
    add("nbdcopy", form, `Copy an image in (libnbd nbdcopy, ${how})`, ["nbdcopy", "disk.img", tlsUri(endpoint, exportName, device, form)]);
    add("qemu-img", form, `Inspect with qemu-img (${how})`, [
      "qemu-img",
      "info",
      "--object",
      qemuTlsObject(device, form),
      "--image-opts",
      qemuImageOptions(endpoint, exportName),
    ]);
    add("qemu", form, `qemu virtual disk (${how})`, [
      "qemu-system-x86_64",
      "-object",
      qemuTlsObject(device, form),
      "-drive",
      `${qemuImageOptions(endpoint, exportName)},if=virtio`,
    ]);
  }
  add("nbd-client", "x509", "Linux kernel block device (nbd-client, client certificate)", ["sudo", ...nbdClientWords(endpoint, exportName, device)]);
  return out;
}
