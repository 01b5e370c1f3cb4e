/**
 * The verb behind "attach this volume from that device": the TLS commands for one of the caller's
 * volumes and one of the caller's active device credentials that may use it. Another user's volume or
 * credential is NOT_FOUND, like everywhere else. Over TLS an export's name is the owner's volume name.
 */
import * as z from "zod";
import type { ServiceContext } from "../context";
import { listDeviceCredentials, type DeviceCredentialView } from "../devices/devices";
import { ServiceError } from "../errors";
import { volumeByName } from "../volumes/inputs";
import { findOwnedVolume } from "../volumes/lookup";
import { parseInput } from "../volumes/volumes";
import { tlsAttachCommands, type NbdEndpoint, type TlsAttachCommand } from "./attach-commands";
import { defaultDeviceDir } from "./device-files";

export const deviceAttachCommandsInput = volumeByName.extend({
  /** The credential's id, or its name among the caller's non-revoked credentials. */
  device: z.string().trim().min(1).max(64),
});

export interface DeviceAttachCommands {
  endpoint: NbdEndpoint;
  exportName: string;
  /** The gateway requires TLS (off loopback); otherwise it also serves plaintext on loopback. */
  tlsRequired: boolean;
  device: Pick<DeviceCredentialView, "id" | "name" | "status" | "volumes">;
  /** Printed for the credential's default folder, ~/.config/stratus/devices/NAME. */
  commands: Array<Omit<TlsAttachCommand, "words">>;
}

/** The caller's credential by id or name (an active one is preferred when a name was reused). */
export async function findOwnedDevice(ctx: ServiceContext, idOrName: string): Promise<DeviceCredentialView> {
  const all = await listDeviceCredentials(ctx);
  const found = all.find((d) => d.id === idOrName) ?? all.find((d) => d.name === idOrName && d.status === "active") ?? all.find((d) => d.name === idOrName);
  if (!found) throw new ServiceError("NOT_FOUND", `no device credential ${idOrName}`, { field: "device" });
  return found;
}

export async function deviceAttachCommands(ctx: ServiceContext, input: z.input<typeof deviceAttachCommandsInput>): Promise<DeviceAttachCommands> {
  const { name, device: idOrName } = parseInput(deviceAttachCommandsInput, input);
  const volume = await findOwnedVolume(ctx, name);
  const device = await findOwnedDevice(ctx, idOrName);
  if (device.status !== "active") throw new ServiceError("BAD_REQUEST", `device credential ${device.name} is ${device.status}`, { field: "device" });
  if (device.volumes !== null && !device.volumes.includes(volume.name)) {
    throw new ServiceError(
      "BAD_REQUEST",
      `device credential ${device.name} may not use volume ${volume.name} (it is limited to ${device.volumes.join(", ") || "no volume"})`,
      {
        field: "device",
      },
    );
  }
  const { host, port, tls } = ctx.runtime.config.nbd;
  const endpoint = { host, port };
  const commands = tlsAttachCommands(endpoint, volume.name, { id: device.id, name: device.name, dir: defaultDeviceDir(device.name) });
  return {
    endpoint,
    exportName: volume.name,
    tlsRequired: tls,
    device: { id: device.id, name: device.name, status: device.status, volumes: device.volumes },
    commands: commands.map(({ words: _words, ...rest }) => rest),
  };
}
