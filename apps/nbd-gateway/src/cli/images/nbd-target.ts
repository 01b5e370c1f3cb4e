/**
 * Where an image copy reaches a volume over NBD. On the server's machine (a loopback STRATUS_URL) the
 * gateway's plaintext loopback listener, as the local admin; from another machine, or with --device,
 * the TLS attach path: this machine's device credential (created under ~/.config/stratus/devices on
 * first use, as `stratus attach` does) in a TLS-PSK `nbds://` URI. The URI names the PSK file, never the key.
 */
import os from "node:os";
import { argv, tlsUri, type DeviceAttachCommands } from "@stratus/control";
import { CliError, type ApiClient } from "../api-client";
import { machineCredential } from "../devices/attach-cli";
import { loadCliPaths } from "../devices/env";

export interface NbdTarget {
  uri: string;
  /** For messages: "loopback NBD" or "TLS-PSK as device NAME". */
  how: string;
  /** The lease holder name this connection has: "local" on loopback, else the device credential's name. */
  holder: string;
}

export async function volumeNbdTarget(client: ApiClient, volume: string, options: { device?: string }): Promise<NbdTarget> {
  const local = client.localNbd;
  if (local && options.device === undefined) {
    const host = local.host.includes(":") ? `[${local.host}]` : local.host;
    return { uri: `nbd://${host}:${local.port}/${encodeURIComponent(volume)}`, how: "loopback NBD", holder: "local" };
  }
  const paths = loadCliPaths();
  const device = await machineCredential(client, paths, options.device ?? os.hostname());
  if (device.created) process.stderr.write(`created device credential ${device.name} (${device.id}) in ${device.dir}\n`);
  const info = await client.request<DeviceAttachCommands>(
    "GET",
    `/api/v1/volumes/${encodeURIComponent(volume)}/attach-commands?device=${encodeURIComponent(device.id)}`,
  );
  const [uri] = argv([tlsUri(info.endpoint, info.exportName, device, "psk")], paths.home);
  return { uri: uri!, how: `TLS-PSK as device ${device.name}`, holder: device.name };
}

/** A hint for a failed copy over the loopback listener: the port the CLI assumed, or a gateway that requires TLS. */
export function loopbackHint(target: NbdTarget, error: unknown): unknown {
  if (target.holder !== "local" || !(error instanceof Error)) return error;
  const message = error.message;
  if (/connection refused/i.test(message)) {
    return new CliError(`${message}\n(nothing listens at ${target.uri.replace(/\/[^/]*$/, "")}: set STRATUS_NBD_PORT to the gateway's NBD port)`);
  }
  if (/tls|handshake|policy/i.test(message)) return new CliError(`${message}\n(the gateway may require TLS here: pass --device NAME)`);
  return error;
}
