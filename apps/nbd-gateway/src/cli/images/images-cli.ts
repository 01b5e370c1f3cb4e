/**
 * `stratus volume import NAME FILE` and `stratus volume export NAME FILE`: disk images in and out of a
 * running server. The CLI asks the REST API for the volume, and nbdcopy moves the data over NBD (see
 * nbd-copy.ts: only allocated, non-zero data crosses the wire; an export is a sparse file).
 *
 * An interrupted or failed import leaves no volume behind: the volume exists only while the copy runs,
 * and on Ctrl-C, SIGTERM, SIGHUP or any failure the CLI stops nbdcopy, waits for the gateway to let the
 * volume go and deletes it (waiting for the delete to finish). We chose delete-on-failure over a hidden
 * "importing" state because it needs no new volume state in the database, the dashboard or the GC. A
 * CLI that is SIGKILLed cannot clean up: a detached reaper process (import-reaper.ts) deletes the volume
 * when its pipe from the CLI closes without "done". An import is reported done only once the gateway
 * has committed it to the bucket.
 * An interrupted export removes its partial file (written as FILE.partial-PID, renamed at the end).
 *
 * FILE may be an http(s) URL (a presigned S3 URL too): qemu-nbd reads it with qemu's curl driver (Range
 * requests), so a cloud image comes in without a local copy. Messages show it without its query string.
 */
import { mkdtemp, open, rename, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { formatSize, type DeleteProgress, type VolumeView } from "@stratus/control";
import { CliError, type ApiClient } from "../api-client";
import { print } from "../output";
import { readPassphrases } from "../passphrase-input";
import { capture, filesystemOf, imageInfo, requireTool, volumeSizeFor } from "./image-tools";
import { nbdCopy, type CopyEnd } from "./nbd-copy";
import { loopbackHint, volumeNbdTarget } from "./nbd-target";
import { registerReaperCommand, startReaper, type ReaperHandle } from "./import-reaper";
import { copyProgress, type CopyProgress } from "./progress";
import { importServerSide } from "./server-side-import";

interface ImportOptions {
  chunkSize?: number;
  durability?: string;
  passphraseStdin?: boolean;
  usedOnly?: boolean;
  device?: string;
  serverSide?: boolean;
}

interface ExportOptions {
  format?: "raw" | "qcow2";
  force?: boolean;
  device?: string;
  takeOver?: boolean;
}

/** Thrown into the copy when a signal asks the CLI to stop. */
class Interrupted extends CliError {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted (${signal})`);
  }
}

const STOP_SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** An AbortSignal that fires on Ctrl-C/SIGTERM/SIGHUP (each handled, so the process does not just die). */
function interruptions(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const handlers = STOP_SIGNALS.map((sig) => {
    const handler = () => {
      if (!controller.signal.aborted) process.stderr.write(`\n${sig}: stopping…\n`);
      controller.abort(new Interrupted(sig));
    };
    process.on(sig, handler);
    return [sig, handler] as const;
  });
  return { signal: controller.signal, dispose: () => handlers.forEach(([sig, handler]) => process.off(sig, handler)) };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function findVolume(client: ApiClient, name: string): Promise<VolumeView | undefined> {
  const { volumes } = await client.request<{ volumes: VolumeView[] }>("GET", "/api/v1/volumes");
  return volumes.find((v) => v.name === name);
}

/** Waits until the gateway has closed the volume after the copy: its final commit landed, the lease is back. */
async function waitCommitted(client: ApiClient, name: string, signal: AbortSignal): Promise<VolumeView> {
  for (;;) {
    if (signal.aborted) throw signal.reason as Error;
    const view = await findVolume(client, name);
    if (!view) throw new CliError(`volume ${name} disappeared during the import`);
    if (view.lease === null && !view.dirtyBytes) return view;
    await pause(250);
  }
}

/** Deletes a partial import: retried while the gateway still holds it (closing after nbdcopy ended). */
async function deletePartial(client: ApiClient, name: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await client.request("DELETE", `/api/v1/volumes/${encodeURIComponent(name)}`);
      break;
    } catch (error) {
      if (!(error instanceof CliError) || !/attached by/.test(error.message) || Date.now() > deadline) throw error;
      await pause(250);
    }
  }
  while (Date.now() < deadline) {
    const progress = await client.request<DeleteProgress>("GET", `/api/v1/volumes/${encodeURIComponent(name)}/delete-progress`);
    if (progress.state === "completed") return;
    if (progress.state === "failed") throw new CliError(`deleting the partial volume ${name} failed: ${progress.error ?? "unknown error"} (it is retried)`);
    await pause(200);
  }
  throw new CliError(`the partial volume ${name} is still being deleted (see stratus volume list)`);
}

/** An http(s) URL's origin and path only: a presigned URL's query is a credential. */
export function displayName(file: string): string {
  if (!isUrl(file)) return file;
  try {
    const url = new URL(file);
    return `${url.origin}${url.pathname}${url.search ? "?…" : ""}`;
  } catch {
    return "the URL";
  }
}

const isUrl = (file: string) => /^https?:\/\//i.test(file);

/**
 * A sparse copy of a filesystem image holding only the blocks its filesystem uses (metadata and file
 * data), so free space full of old garbage is never read or uploaded: `e2image -ra` for ext2/3/4,
 * `ntfsclone` (its default output is such a sparse raw image) for NTFS.
 */
async function copyUsedBlocks(source: string, used: string): Promise<void> {
  const fs = await filesystemOf(source);
  if (fs === "ntfs") {
    const ntfsclone = await requireTool("ntfsclone");
    process.stderr.write(`reading the used clusters of ${source} (ntfsclone)…\n`);
    await capture(ntfsclone, ["--quiet", "--overwrite", used, source]).catch((error: unknown) => {
      throw new CliError(`--used-only could not read the NTFS filesystem (an unclean one needs ntfsfix or Windows' chkdsk first): ${(error as Error).message}`);
    });
    return;
  }
  if (fs !== "ext") throw new CliError("--used-only needs an ext2/3/4 or NTFS filesystem image (not a partitioned disk)");
  const e2image = await requireTool("e2image");
  process.stderr.write(`reading the used blocks of ${source} (e2image -ra)…\n`);
  await capture(e2image, ["-ra", source, used]).catch((error: unknown) => {
    throw new CliError(`--used-only needs an ext2/3/4 filesystem image (not a partitioned disk): ${(error as Error).message}`);
  });
}

async function importImage(client: ApiClient, name: string, file: string, options: ImportOptions): Promise<void> {
  if (options.serverSide) {
    if (options.usedOnly || options.device) throw new CliError("--server-side imports a URL in the gateway: --used-only and --device do not apply");
    const passphrase = options.passphraseStdin ? (await readPassphrases({ fromStdin: true, prompts: [""] }))[0] : undefined;
    const stop = interruptions();
    try {
      return await importServerSide(client, { name, url: file, chunkSize: options.chunkSize, durability: options.durability, passphrase }, stop.signal);
    } finally {
      stop.dispose();
    }
  }
  const nbdcopy = await requireTool("nbdcopy");
  const shown = displayName(file);
  const redact = (error: unknown) =>
    error instanceof Error && error.message.includes(file) && shown !== file ? new CliError(error.message.split(file).join(shown)) : error;
  const info = await imageInfo(file).catch((error: unknown) => {
    throw redact(error);
  });
  const passphrase = options.passphraseStdin ? (await readPassphrases({ fromStdin: true, prompts: [""] }))[0] : undefined;
  const stop = interruptions();
  let scratch: string | undefined;
  let created = false;
  let reaper: ReaperHandle | undefined;
  let progress: CopyProgress | undefined;
  try {
    let source: CopyEnd;
    if (options.usedOnly) {
      if (info.format !== "raw" || isUrl(file)) {
        throw new CliError(
          `--used-only reads an ext2/3/4 or NTFS filesystem image file directly, and ${shown} is ${isUrl(file) ? "a URL" : info.format}: make a local raw copy first`,
        );
      }
      scratch = await mkdtemp(path.join(os.tmpdir(), "stratus-import-"));
      const used = path.join(scratch, "used.img");
      await copyUsedBlocks(path.resolve(file), used);
      source = { kind: "file", path: used };
    } else if (info.format === "raw" && !isUrl(file)) {
      source = { kind: "file", path: path.resolve(file) };
    } else {
      const location = isUrl(file) ? file : path.resolve(file);
      source = { kind: "qemu-nbd", qemuNbd: await requireTool("qemu-nbd"), format: info.format, path: location, readOnly: true };
    }
    if (stop.signal.aborted) throw stop.signal.reason as Error;

    const size = volumeSizeFor(info.virtualSize);
    const createdView = await client.request<VolumeView>("POST", "/api/v1/volumes", {
      name,
      size,
      chunkSize: options.chunkSize,
      durability: options.durability,
      passphrase,
      autoUnlock: true,
    });
    created = true;
    reaper = startReaper(name, createdView.id);
    const target = await volumeNbdTarget(client, name, { device: options.device });
    process.stderr.write(`created volume ${name} (${formatSize(size)}); copying ${shown} (${info.format}) over ${target.how}\n`);
    progress = copyProgress(`importing ${name}`, info.virtualSize);
    await nbdCopy({
      nbdcopy,
      source,
      destination: { kind: "nbd", uri: target.uri },
      onProgress: (p) => progress!.update(p),
      onStart: (pid) => reaper?.watchCopy(pid),
      signal: stop.signal,
    }).catch((error: unknown) => {
      throw loopbackHint(target, error);
    });
    progress.stop();
    process.stderr.write(`committing ${name} to the bucket…\n`);
    const view = await waitCommitted(client, name, stop.signal);
    reaper.release();
    print(`imported ${shown} (${info.format}, ${formatSize(info.virtualSize)}) into volume ${name}: ${formatSize(view.storedBytes)} stored, id ${view.id}`);
  } catch (caught) {
    const error = redact(caught);
    progress?.stop();
    if (created) {
      process.stderr.write(`import ${error instanceof Interrupted ? "interrupted" : "failed"}: deleting the partial volume ${name}…\n`);
      await deletePartial(client, name); // if this fails, the reaper tries again once this process has exited
      reaper?.release();
      if (error instanceof Interrupted) throw new CliError(`import interrupted (${error.signal}): volume ${name} was deleted`);
      throw new CliError(`${(error as Error).message}\n(volume ${name} was deleted)`);
    }
    throw error;
  } finally {
    stop.dispose();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

async function exportImage(client: ApiClient, name: string, file: string, options: ExportOptions): Promise<void> {
  const nbdcopy = await requireTool("nbdcopy");
  const format = options.format ?? (/\.qcow2$/i.test(file) ? "qcow2" : "raw");
  const volume = await findVolume(client, name);
  if (!volume) throw new CliError(`no volume named ${name}`);
  if (
    !options.force &&
    (await stat(file).then(
      () => true,
      () => false,
    ))
  )
    throw new CliError(`${file} exists: pass --force to replace it`);
  const source = await volumeNbdTarget(client, name, { device: options.device });
  // Reading is an attach: from another holder it would take the volume over (its client is shut down).
  if (volume.lease && volume.lease.holder !== source.holder && !options.takeOver) {
    const since = volume.lease.since.slice(0, 16).replace("T", " ");
    throw new CliError(
      `volume ${name} is attached by ${volume.lease.holder} since ${since} UTC: exporting would take it over; detach it first (stratus volume detach ${name}) or pass --take-over`,
    );
  }
  const partial = path.resolve(`${file}.partial-${process.pid}`);
  const stop = interruptions();
  let progress: CopyProgress | undefined;
  try {
    let destination: CopyEnd;
    if (format === "qcow2") {
      const qemuImg = await requireTool("qemu-img");
      await capture(qemuImg, ["create", "-q", "-f", "qcow2", partial, String(volume.sizeBytes)]);
      destination = { kind: "qemu-nbd", qemuNbd: await requireTool("qemu-nbd"), format: "qcow2", path: partial, readOnly: false };
    } else {
      const handle = await open(partial, "wx", 0o644);
      await handle.truncate(volume.sizeBytes); // a hole of the volume's size: nbdcopy writes only the data
      await handle.close();
      destination = { kind: "file", path: partial };
    }
    progress = copyProgress(`exporting ${name}`, volume.sizeBytes);
    await nbdCopy({ nbdcopy, source: { kind: "nbd", uri: source.uri }, destination, onProgress: (p) => progress!.update(p), signal: stop.signal }).catch(
      (error: unknown) => {
        throw loopbackHint(source, error);
      },
    );
    progress.stop();
    await rename(partial, file);
    const written = await stat(file);
    print(`exported volume ${name} (${formatSize(volume.sizeBytes)}) to ${file} (${format}, ${formatSize(written.blocks * 512)} on disk)`);
  } catch (error) {
    progress?.stop();
    await rm(partial, { force: true });
    if (error instanceof Interrupted) throw new CliError(`export interrupted (${error.signal}): ${file} was not written`);
    throw error;
  } finally {
    stop.dispose();
  }
}

export function registerImageCommands(volume: Command, apiClient: () => ApiClient, sizeOption: (value: string) => number): void {
  volume
    .command("import")
    .argument("<name>", "the new volume's name")
    .argument("<file>", "a disk image file or http(s) URL: raw, qcow2, vmdk, vdi, vhdx… (whatever qemu-img reads)")
    .option("--server-side", "FILE is an http(s) URL or s3://bucket/key that the gateway downloads itself, as a job (the dashboard's Import from URL)")
    .option("--used-only", "FILE is an ext2/3/4 or NTFS filesystem: copy only the blocks it uses (e2image -ra, ntfsclone), not the garbage in its free space")
    .option("--chunk-size <size>", "chunk size, a power of two from 64K to 64M (default 1M)", sizeOption)
    .option("--durability <mode>", "local or cloud (default local)", durabilityOption)
    .option("--passphrase-stdin", "also protect the volume with a passphrase read from standard input (it keeps its auto-unlock slot)")
    .option("--device <name>", "reach NBD over TLS with this machine's device credential (default from another machine: the host name)")
    .description("create a volume sized to a disk image and copy the image's allocated, non-zero data into it")
    .action((name: string, file: string, options: ImportOptions) => importImage(apiClient(), name, file, options));

  registerReaperCommand(volume, apiClient, deletePartial);

  volume
    .command("export")
    .argument("<name>", "volume name")
    .argument("<file>", "the image file to write (sparse)")
    .option("--format <format>", "raw or qcow2 (default: qcow2 for a .qcow2 name, else raw)", formatOption)
    .option("--force", "replace FILE if it exists")
    .option("--take-over", "export even while another device holds the volume (it is handed over: that device's client is disconnected)")
    .option("--device <name>", "reach NBD over TLS with this machine's device credential (default from another machine: the host name)")
    .description("write a volume to a sparse raw or qcow2 image file")
    .action((name: string, file: string, options: ExportOptions) => exportImage(apiClient(), name, file, options));
}

function durabilityOption(value: string): string {
  if (value !== "local" && value !== "cloud") throw new InvalidArgumentError("durability is local or cloud");
  return value;
}

function formatOption(value: string): "raw" | "qcow2" {
  if (value !== "raw" && value !== "qcow2") throw new InvalidArgumentError("format is raw or qcow2");
  return value;
}
