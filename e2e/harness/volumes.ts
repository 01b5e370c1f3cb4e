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
  /** Who has it open, or null. */
  attached?: { connections: number } | null;
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

const CLOSE_FAILED = "flushing a volume on last disconnect failed; keeping it open";

/** How often waitForCommitted asks the CLI while the volume stays open with a client. */
const CLI_POLL_MS = 1_000;

/**
 * Waits until the volume has nothing left to commit in this gateway: dirty bytes 0 while it is open,
 * or, when the last client's disconnect is closing it, until the gateway logged "volume closed"
 * (after the final commit landed).
 *
 * The gateway's log is read first because it costs nothing, while each CLI call is a whole Node.js
 * process — about a core-second on these 2-core machines, which a benchmark would otherwise take
 * from the very commit it is timing. The CLI is asked only while the log says the volume is open,
 * at most once a second.
 */
export async function waitForCommitted(gateway: Gateway, name: string, { timeoutMs = 120_000 } = {}): Promise<void> {
  let askedAt = -Infinity;
  await waitFor(
    `${name} committed`,
    async () => {
      const state = lifecycleFromLogs(gateway, name);
      if (state === "closed") return true;
      if (state === "closing" || Date.now() - askedAt < CLI_POLL_MS) return undefined;
      askedAt = Date.now();
      const { dirtyBytes } = await findVolume(gateway, name);
      // null: not open in this gateway (never opened, or closed since the log was read).
      if (dirtyBytes === 0 || (dirtyBytes == null && lifecycleFromLogs(gateway, name) !== "closing")) return true;
      return undefined;
    },
    { timeoutMs, intervalMs: 20 },
  );
}

/**
 * Where the gateway's log says the volume named `name` is: "open" after its last "volume opened",
 * then "closing" (last client gone, final commit running) and "closed"; undefined if never opened.
 */
function lifecycleFromLogs(gateway: Gateway, name: string): "open" | "closing" | "closed" | undefined {
  const logs = gateway.logs();
  let opened = -1;
  for (let i = logs.length - 1; i >= 0 && opened < 0; i--) {
    if (logs[i]!.msg === "volume opened" && logs[i]!.volume === name) opened = i;
  }
  if (opened < 0) return undefined;
  const volumeId = logs[opened]!.volumeId;
  let state: "open" | "closing" | "closed" = "open";
  for (let i = opened + 1; i < logs.length; i++) {
    const line = logs[i]!;
    if (line.volumeId !== volumeId) continue;
    if (line.msg === "volume closing") state = "closing";
    else if (line.msg === "volume closed") state = "closed";
    else if (line.msg === CLOSE_FAILED) state = "open"; // the gateway keeps it open and retries
  }
  return state;
}

/** What one volume holds in a local-directory bucket: its objects live under vol/<volumeId>/ (contract). */
export function volumeBucketUsage(gateway: Gateway, volumeId: string): Promise<FolderUsage> {
  return folderUsage(path.join(gateway.bucketDir, "vol", volumeId));
}
