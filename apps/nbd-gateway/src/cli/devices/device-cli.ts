/**
 * `stratus device create|list|revoke`: device credentials for NBD over TLS, through the REST API
 * (STRATUS_URL + STRATUS_TOKEN, or the local token file). The secret is written to files (0600) and
 * never printed.
 */
import path from "node:path";
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { deviceFolderName, type CreatedDeviceCredential, type DeviceCredentialView } from "@stratus/control";
import { ApiClient, CliError } from "../api-client";
import { loadCliPaths } from "./env";
import { assertFreeFolder, writeDeviceFolder } from "./device-folder";
import { print, printTable } from "../output";

export interface CreateDeviceOptions {
  volumes?: string[];
  expiresInDays?: number;
}

/** Creates the credential on the server and writes its folder; refuses a non-empty folder first. */
export async function createDeviceInFolder(client: ApiClient, name: string, dir: string, options: CreateDeviceOptions): Promise<DeviceCredentialView> {
  await assertFreeFolder(dir);
  const created = await client.request<CreatedDeviceCredential>("POST", "/api/v1/devices", {
    name,
    volumes: options.volumes && options.volumes.length > 0 ? options.volumes : undefined,
    expiresInDays: options.expiresInDays,
  });
  await writeDeviceFolder(dir, created.secret);
  return created.credential;
}

/** An id as given, or the id of the caller's active credential of that name. */
export async function resolveDeviceId(client: ApiClient, idOrName: string): Promise<string> {
  const { devices } = await client.request<{ devices: DeviceCredentialView[] }>("GET", "/api/v1/devices");
  const match = devices.find((d) => d.id === idOrName) ?? devices.find((d) => d.name === idOrName && d.status === "active");
  if (!match) throw new CliError(`no device credential ${idOrName} (see stratus device list)`);
  return match.id;
}

/** `apiClient` builds the client for the server the environment names (with the program-wide --insecure). */
export function registerDeviceCommands(program: Command, apiClient: () => ApiClient): void {
  const device = program.command("device").description("device credentials: attach volumes from another machine over NBD with TLS");

  device
    .command("create")
    .argument("<name>", "the device, e.g. laptop")
    .option("--volume <name>", "a volume it may use (repeat; default: all of yours)", (value: string, all: string[] = []) => [...all, value])
    .option("--expires-in-days <n>", "expire after N days (default: never)", daysOption)
    .option("--out <dir>", "where to write keys.psk, client-cert.pem, client-key.pem, ca-cert.pem (default: ~/.config/stratus/devices/NAME)")
    .option("--json", "print the credential as JSON")
    .description("create a device credential and write its files (mode 0600); the key is shown nowhere else")
    .action(async (name: string, options: { volume?: string[]; expiresInDays?: number; out?: string; json?: boolean }) => {
      const dir = path.resolve(options.out ?? path.join(loadCliPaths().devicesDir, deviceFolderName(name)));
      const client = apiClient();
      const credential = await createDeviceInFolder(client, name, dir, { volumes: options.volume, expiresInDays: options.expiresInDays });
      if (options.json) return print(JSON.stringify({ credential, dir }, null, 2));
      print(`created device credential ${credential.name} (${credential.id}); its files are in ${dir}`);
      print(`attach a volume with: stratus attach VOLUME --device ${credential.name} --fuse DIR   (or see the volume's page in the dashboard)`);
    });

  device
    .command("list")
    .option("--json", "print JSON")
    .description("list your device credentials")
    .action(async (options: { json?: boolean }) => {
      const client = apiClient();
      const { devices } = await client.request<{ devices: DeviceCredentialView[] }>("GET", "/api/v1/devices");
      if (options.json) return print(JSON.stringify(devices, null, 2));
      if (devices.length === 0) return print("no device credentials yet: stratus device create NAME");
      printTable(
        ["NAME", "ID", "VOLUMES", "STATUS", "LAST USED", "EXPIRES"],
        devices.map((d) => [
          d.name,
          d.id,
          d.volumes === null ? "all" : d.volumes.join(",") || "none",
          d.status,
          d.lastUsedAt ?? "never",
          d.expiresAt ?? "never",
        ]),
      );
    });

  device
    .command("revoke")
    .argument("<id>", "the credential's id (or its name)")
    .description("revoke a device credential: its next handshake is refused and its connections close")
    .action(async (idOrName: string) => {
      const client = apiClient();
      const id = await resolveDeviceId(client, idOrName);
      const revoked = await client.request<DeviceCredentialView>("DELETE", `/api/v1/devices/${encodeURIComponent(id)}`);
      print(`revoked device credential ${revoked.name} (${revoked.id})`);
    });
}

function daysOption(value: string): number {
  const days = Number(value);
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new InvalidArgumentError("a whole number of days from 1 to 3650");
  return days;
}
