import path from "node:path";
import { waitFor } from "./exec";
import type { Gateway } from "./gateway";
import { folderUsage, type FolderUsage } from "./images";

/** The fields of `stratus volume create/list --json` the tests rely on. */
export interface VolumeInfo {
  id: string;
  name: string;
  sizeBytes: number;
  chunkSize: number;
  state?: string;
  /** Durability issue: the committed epoch, dirty bytes in this gateway, last cloud commit (ISO). */
  epoch?: number;
  dirtyBytes?: number | null;
  storedBytes?: number | null;
  lastCommitAt?: string | null;
  durability?: "local" | "cloud";
}

export interface CreateVolumeOptions {
  size: string;
  chunkSize?: string;
  durability?: "local" | "cloud";
  /** Sent on stdin with --passphrase-stdin (never on the command line). */
  passphrase?: string;
  /** --no-auto-unlock: the volume must be unlocked with its passphrase before it can be attached. */
  noAutoUnlock?: boolean;
}

/** `stratus volume create NAME --size SIZE [...] --json` through the gateway's CLI. */
export async function createVolume(gateway: Gateway, name: string, options: CreateVolumeOptions): Promise<VolumeInfo> {
  const args = ["volume", "create", name, "--size", options.size, "--json"];
  if (options.chunkSize !== undefined) args.push("--chunk-size", options.chunkSize);
  if (options.durability !== undefined) args.push("--durability", options.durability);
  if (options.passphrase !== undefined) args.push("--passphrase-stdin");
  if (options.noAutoUnlock) args.push("--no-auto-unlock");
  const input = options.passphrase === undefined ? undefined : `${options.passphrase}\n`;
  return JSON.parse(await gateway.cli(args, { input })) as VolumeInfo;
}

export async function listVolumes(gateway: Gateway): Promise<VolumeInfo[]> {
  return JSON.parse(await gateway.cli(["volume", "list", "--json"])) as VolumeInfo[];
}

export async function findVolume(gateway: Gateway, name: string): Promise<VolumeInfo> {
  const volume = (await listVolumes(gateway)).find((v) => v.name === name);
  if (!volume) throw new Error(`no volume ${name}`);
  return volume;
}

/**
 * Waits until the volume has nothing left to commit in this gateway: dirty bytes 0 while it is open,
 * or, when its stats are gone because the last client's disconnect is closing it, until the gateway
 * logged "volume closed" (after the final commit landed). Dirty bytes of a volume being closed read
 * as null, which is not "committed".
 */
export async function waitForCommitted(gateway: Gateway, name: string, { timeoutMs = 120_000 } = {}): Promise<void> {
  const { id } = await findVolume(gateway, name);
  await waitFor(
    `${name} committed`,
    async () => {
      const { dirtyBytes } = await findVolume(gateway, name);
      if (dirtyBytes === 0 || (dirtyBytes == null && isClosed(gateway, id))) return true;
      return undefined;
    },
    { timeoutMs, intervalMs: 50 },
  );
}

/** The last "volume opened"/"volume closed" line for this volume says closed (or there is none). */
function isClosed(gateway: Gateway, volumeId: string): boolean {
  const logs = gateway.logs();
  for (let i = logs.length - 1; i >= 0; i--) {
    const line = logs[i]!;
    if (line.volumeId !== volumeId) continue;
    if (line.msg === "volume closed") return true;
    if (line.msg === "volume opened") return false;
  }
  return true;
}

/** What one volume holds in a local-directory bucket: its objects live under vol/<volumeId>/ (contract). */
export function volumeBucketUsage(gateway: Gateway, volumeId: string): Promise<FolderUsage> {
  return folderUsage(path.join(gateway.bucketDir, "vol", volumeId));
}
