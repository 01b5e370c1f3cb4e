import path from "node:path";
import type { Gateway } from "./gateway";
import { folderUsage, type FolderUsage } from "./images";

/** The fields of `stratus volume create/list --json` the tests rely on. */
export interface VolumeInfo {
  id: string;
  name: string;
  sizeBytes: number;
  chunkSize: number;
}

/** `stratus volume create NAME --size SIZE [--chunk-size C] --json` through the gateway's CLI. */
export async function createVolume(
  gateway: Gateway,
  name: string,
  { size, chunkSize }: { size: string; chunkSize?: string },
): Promise<VolumeInfo> {
  const args = ["volume", "create", name, "--size", size, "--json"];
  if (chunkSize !== undefined) args.push("--chunk-size", chunkSize);
  return JSON.parse(await gateway.cli(args)) as VolumeInfo;
}

export async function listVolumes(gateway: Gateway): Promise<VolumeInfo[]> {
  return JSON.parse(await gateway.cli(["volume", "list", "--json"])) as VolumeInfo[];
}

/** What one volume holds in a local-directory bucket: its objects live under vol/<volumeId>/ (contract). */
export function volumeBucketUsage(gateway: Gateway, volumeId: string): Promise<FolderUsage> {
  return folderUsage(path.join(gateway.bucketDir, "vol", volumeId));
}
