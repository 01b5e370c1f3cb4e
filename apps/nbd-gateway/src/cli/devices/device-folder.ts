/**
 * A device credential's folder on this machine: written once from the create answer (folder 0700,
 * keys 0600) and read back by `stratus attach`. The PSK identity (= the credential id) is the part of
 * keys.psk before the colon, so a folder unpacked from the dashboard's download works the same.
 */
import { chmod, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { DEVICE_FILE_NAMES, deviceFiles, type DeviceSecretFiles } from "@stratus/control";
import { CliError } from "../api-client";

/** Refuses a folder that already holds files: they may be the only copy of another credential. */
export async function assertFreeFolder(dir: string): Promise<void> {
  const entries = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  if (entries.length > 0) throw new CliError(`${dir} is not empty; choose another folder with --out, or remove it first`);
}

export async function writeDeviceFolder(dir: string, secret: DeviceSecretFiles): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const written: string[] = [];
  for (const file of deviceFiles(secret)) {
    const target = path.join(dir, file.name);
    // wx: never overwrite; the mode is set at creation, before any byte of a key is written.
    await writeFile(target, file.content, { mode: file.mode, flag: "wx" });
    await chmod(target, file.mode);
    written.push(target);
  }
  return written;
}

/** The credential id of the folder's keys.psk, or undefined when the folder has none. */
export async function readDeviceIdentity(dir: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, DEVICE_FILE_NAMES.psk), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const identity = text.split("\n")[0]?.split(":")[0]?.trim();
  if (!identity) throw new CliError(`${path.join(dir, DEVICE_FILE_NAMES.psk)} is not a PSK file (identity:hexkey)`);
  return identity;
}
