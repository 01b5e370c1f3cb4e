/**
 * `stratus attach VOLUME [--device NAME] [--fuse DIR]` and `stratus detach VOLUME|DIR|/dev/nbdN`: from a
 * user's machine (STRATUS_URL + STRATUS_TOKEN), attach a volume over NBD with TLS. The machine's device
 * credential is reused from ~/.config/stratus/devices/NAME, or created there (0600) on first use; then
 * nbdfuse (TLS-PSK) serves DIR/disk.img in its own session, or nbd-client (X.509) connects a /dev/nbdN.
 */
import { spawn } from "node:child_process";
import { mkdir, open, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Command } from "commander";
import { argv, deviceFolderName, nbdClientWords, nbdfuseWords, shellCommand, type DeviceAttachCommands, type DeviceCredentialRef } from "@stratus/control";
import { ApiClient, CliError } from "../api-client";
import { print } from "../output";
import { attachmentFiles, forgetAttachment, listAttachments, saveAttachment, type Attachment } from "./attachments";
import { readDeviceIdentity } from "./device-folder";
import { createDeviceInFolder } from "./device-cli";
import { loadCliPaths, type CliPaths } from "./env";
import { runTool, waitUntil } from "./processes";

interface AttachOptions {
  device?: string;
  fuse?: string;
  nbdDevice?: string;
  printOnly?: boolean;
}

/** This machine's credential for `name`: its folder's identity, or a new credential written there (attach, image import/export). */
export async function machineCredential(client: ApiClient, paths: CliPaths, name: string): Promise<DeviceCredentialRef & { created: boolean }> {
  const dir = path.join(paths.devicesDir, deviceFolderName(name));
  const existing = await readDeviceIdentity(dir);
  if (existing) return { id: existing, name, dir, created: false };
  const credential = await createDeviceInFolder(client, name, dir, {}).catch((error: unknown) => {
    if (error instanceof CliError && /exists|already/i.test(error.message)) {
      throw new CliError(
        `a device credential named ${name} exists but its files are not in ${dir}: unpack its download there, revoke it, or pass --device OTHER`,
      );
    }
    throw error;
  });
  return { id: credential.id, name, dir, created: true };
}

async function attach(client: ApiClient, volume: string, options: AttachOptions): Promise<void> {
  const paths = loadCliPaths();
  const device = await machineCredential(client, paths, options.device ?? os.hostname());
  if (device.created) print(`created device credential ${device.name} (${device.id}) in ${device.dir}`);
  const info = await client
    .request<DeviceAttachCommands>("GET", `/api/v1/volumes/${encodeURIComponent(volume)}/attach-commands?device=${encodeURIComponent(device.id)}`)
    .catch((error: unknown) => {
      if (error instanceof CliError && /is (revoked|expired)$/.test(error.message)) {
        throw new CliError(`${error.message}: remove ${device.dir} to have a new one created, or pass --device OTHER`);
      }
      throw error;
    });
  if (options.fuse !== undefined) return attachFuse(paths, volume, device, info, path.resolve(options.fuse), !!options.printOnly);
  return attachNbd(paths, volume, device, info, options);
}

async function attachFuse(
  paths: CliPaths,
  volume: string,
  device: DeviceCredentialRef,
  info: DeviceAttachCommands,
  mountDir: string,
  printOnly: boolean,
): Promise<void> {
  const files = attachmentFiles(paths.attachmentsDir, mountDir);
  const args = argv(nbdfuseWords(info.endpoint, info.exportName, device, mountDir, files.pidFile), paths.home);
  if (printOnly) return print(shellCommand(args));
  if ((await listAttachments(paths.attachmentsDir)).some((a) => a.target === mountDir)) {
    throw new CliError(`something is already attached at ${mountDir}: stratus detach ${mountDir} first`);
  }
  await readdir(mountDir).then(
    (entries) => {
      if (entries.length > 0) throw new CliError(`${mountDir} is not an empty folder`);
    },
    async () => mkdir(mountDir, { recursive: true }),
  );
  await saveAttachment(paths.attachmentsDir, { volume, deviceId: device.id, kind: "fuse", target: mountDir, at: new Date().toISOString() });
  await rm(files.pidFile, { force: true });
  const log = await open(files.logFile, "w", 0o600);
  // Its own session (setsid): nbdfuse serves until `stratus detach`, long after this command ends.
  const child = spawn(args[0]!, args.slice(1), { detached: true, stdio: ["ignore", log.fd, log.fd] });
  await log.close();
  let exited = false;
  child.once("exit", () => (exited = true));
  child.unref();
  try {
    // nbdfuse writes its pid file once it is connected and serving.
    const pid = await waitUntil(`nbdfuse to serve ${mountDir}`, 30_000, async () => {
      if (exited) throw new CliError(`nbdfuse could not attach ${volume}: ${(await readFile(files.logFile, "utf8").catch(() => "")).trim() || "it exited"}`);
      const text = await readFile(files.pidFile, "utf8").catch(() => "");
      return text.trim() === "" ? undefined : Number(text.trim());
    });
    await saveAttachment(paths.attachmentsDir, { volume, deviceId: device.id, kind: "fuse", target: mountDir, pid, at: new Date().toISOString() });
  } catch (error) {
    if (!exited) child.kill("SIGTERM");
    await forgetAttachment(paths.attachmentsDir, mountDir);
    throw error;
  }
  print(`attached volume ${volume} as ${path.join(mountDir, "disk.img")} (nbdfuse over TLS, device ${device.name})`);
  print(`detach with: stratus detach ${shellCommand([mountDir])}`);
}

/** The first /dev/nbdN the kernel is not using (no pid in sysfs), or undefined without kernel NBD. */
async function firstFreeNbdDevice(): Promise<string | undefined> {
  const names = (await readdir("/sys/block").catch(() => [] as string[])).filter((n) => /^nbd\d+$/.test(n));
  names.sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
  for (const name of names) {
    const busy = await readFile(`/sys/block/${name}/pid`, "utf8").then(
      () => true,
      () => false,
    );
    if (!busy) return `/dev/${name}`;
  }
  return undefined;
}

const asRoot = (args: string[]) => (process.getuid?.() === 0 ? args : ["sudo", ...args]);

async function attachNbd(paths: CliPaths, volume: string, device: DeviceCredentialRef, info: DeviceAttachCommands, options: AttachOptions): Promise<void> {
  const nbdDevice = options.nbdDevice ?? (await firstFreeNbdDevice());
  if (!nbdDevice && !options.printOnly) {
    throw new CliError("this machine has no free /dev/nbdN (load the kernel module: sudo modprobe nbd), or use --fuse DIR");
  }
  const args = asRoot(argv(nbdClientWords(info.endpoint, info.exportName, device, nbdDevice ?? "/dev/nbd0"), paths.home));
  if (options.printOnly) return print(shellCommand(args));
  await runTool(args[0]!, args.slice(1), { inherit: true });
  await saveAttachment(paths.attachmentsDir, { volume, deviceId: device.id, kind: "nbd", target: nbdDevice!, at: new Date().toISOString() });
  print(`attached volume ${volume} as ${nbdDevice} (nbd-client over TLS, device ${device.name})`);
  print(`detach with: stratus detach ${nbdDevice}`);
}

async function detachOne(paths: CliPaths, attachment: Attachment): Promise<void> {
  if (attachment.kind === "nbd") {
    const args = asRoot(["nbd-client", "-d", attachment.target]);
    await runTool(args[0]!, args.slice(1));
  } else {
    await runTool("fusermount3", ["-u", attachment.target]).catch((error: unknown) => {
      // Already gone (nbdfuse died, or someone unmounted it): only the record is left to remove.
      if (error instanceof CliError && /not found|not mounted|entry for .* not found/i.test(error.message)) return;
      throw new CliError(
        `${(error as Error).message}\n(is a filesystem on ${path.join(attachment.target, "disk.img")} still mounted, or a loop device on it? unmount it and losetup -d first)`,
      );
    });
    // nbdfuse flushes and exits after the unmount; wait, so a reattach never races it.
    if (attachment.pid) await waitUntil(`nbdfuse (pid ${attachment.pid}) to exit`, 60_000, async () => (isAlive(attachment.pid!) ? undefined : true));
  }
  await forgetAttachment(paths.attachmentsDir, attachment.target);
  print(`detached volume ${attachment.volume} from ${attachment.target}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function detach(target: string): Promise<void> {
  const paths = loadCliPaths();
  const resolved = target.startsWith("/dev/") ? target : path.resolve(target);
  const all = await listAttachments(paths.attachmentsDir);
  const matches = all.filter((a) => a.target === resolved || a.target === target || a.volume === target);
  if (matches.length === 0) throw new CliError(`nothing attached by stratus at ${target} (see ${paths.attachmentsDir})`);
  for (const attachment of matches) await detachOne(paths, attachment);
}

export function registerAttachCommands(program: Command, apiClient: () => ApiClient): void {
  program
    .command("attach")
    .argument("<volume>", "volume name")
    .option("--device <name>", "this machine's device credential, created under ~/.config/stratus/devices on first use (default: the host name)")
    .option("--fuse <dir>", "expose the volume as DIR/disk.img with nbdfuse instead of a /dev/nbdN")
    .option("--nbd-device <path>", "the /dev/nbdN to connect (default: the first free one)")
    .option("--print-only", "set up the credential and print the command that would attach, without running it")
    .description("attach a volume over NBD with TLS, from any machine that reaches the gateway")
    .action((volume: string, options: AttachOptions) => attach(apiClient(), volume, options));

  program
    .command("detach")
    .argument("<target>", "the volume name, the --fuse folder, or the /dev/nbdN")
    .description("undo stratus attach: unmount the FUSE folder (fusermount3 -u) or disconnect the device (nbd-client -d)")
    .action((target: string) => detach(target));
}
