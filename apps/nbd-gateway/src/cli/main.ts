/**
 * `stratus`: run the gateway, and manage volumes on a running one.
 *
 * This module is loaded for every command, `--help` included: it declares the commands and imports
 * only what they all need. A command that needs more (the gateway, above all) imports it in its action
 * with import(), which the build (bin/build.mjs) turns into a chunk loaded only then.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { ConfigError, loadClientConfig } from "../config/env";
import { formatSize, GROW_RECONNECT_NOTICE, MIN_PASSPHRASE_LENGTH, parseSize, SizeParseError, StartupError } from "@stratus/control";
import type { DeleteProgress, DeleteStarted, DetachOutcome, LockOutcome, RecoverOutcome, ResizeOutcome, VolumeView } from "@stratus/control";
import { ApiClient, CliError } from "./api-client";
import { registerAttachCommands } from "./devices/attach-cli";
import { registerDeviceCommands } from "./devices/device-cli";
import { registerImageCommands } from "./images/images-cli";
import { registerOrphanCommands } from "./orphans-cli";
import { registerSnapshotCommands } from "./snapshots-cli";
import { print, printTable } from "./output";
import { readPassphrases } from "./passphrase-input";
import type { RunGatewayOptions } from "./run-gateway";

const program = new Command()
  .name("stratus")
  .description("Disks that live in object storage: run the NBD gateway and manage volumes.")
  .option("--insecure", "allow a plain-http STRATUS_URL to another machine (the API token then crosses the network unencrypted)")
  .showHelpAfterError();

/** The client for the server the environment names; --insecure is a program-wide option. */
function apiClient(): ApiClient {
  return new ApiClient(loadClientConfig(undefined, { insecure: program.opts<{ insecure?: boolean }>().insecure === true }));
}

program
  .command("gateway")
  .description("serve NBD, the dashboard and the API (the embedded default: PGlite + a local bucket directory)")
  .option("--no-web", "serve NBD and run the workers only; the dashboard and API run elsewhere (next start)")
  .addOption(new Option("--exit-with-parent", "stop when the process that started the gateway exits (npm start)").hideHelp())
  .action(async (options: RunGatewayOptions) => (await import("./run-gateway")).runGateway(options));

const volume = program.command("volume").description("manage volumes on a running server (STRATUS_URL and STRATUS_TOKEN, or the local token file)");

volume
  .command("create")
  .argument("<name>", "volume name; also its NBD export name")
  .requiredOption("--size <size>", "size, e.g. 10G, 500M, 2T", sizeOption)
  .option("--chunk-size <size>", "chunk size, a power of two from 64K to 64M", sizeOption, 2 ** 20)
  .option("--durability <mode>", "what FLUSH waits for: local (cache fsync, cloud commit within seconds) or cloud (the commit)", durabilityOption, "local")
  .option("--passphrase-stdin", "read a passphrase from standard input (first line)")
  .option("--ask-passphrase", "prompt for a passphrase (default when standard input is a terminal)")
  .option("--no-passphrase", "no passphrase: the volume is encrypted with an auto-unlock key slot only")
  .option("--no-auto-unlock", "no auto-unlock slot: the volume must be unlocked with its passphrase after each gateway start")
  .option("--json", "print the volume as JSON")
  .description("create an encrypted volume (attachable at once)")
  .action(
    async (
      name: string,
      options: {
        size: number;
        chunkSize: number;
        durability: string;
        passphraseStdin?: boolean;
        askPassphrase?: boolean;
        passphrase: boolean;
        autoUnlock: boolean;
        json?: boolean;
      },
    ) => {
      const wantPassphrase = options.passphrase && (options.passphraseStdin || options.askPassphrase || process.stdin.isTTY || !options.autoUnlock);
      const passphrase = wantPassphrase
        ? (
            await readPassphrases({
              fromStdin: !!options.passphraseStdin,
              prompts: ["passphrase for the new volume: "],
              confirm: true,
              minLength: MIN_PASSPHRASE_LENGTH,
            })
          )[0]
        : undefined;
      const client = apiClient();
      const created = await client.request<VolumeView>("POST", "/api/v1/volumes", {
        name,
        size: options.size,
        chunkSize: options.chunkSize,
        durability: options.durability,
        passphrase,
        autoUnlock: options.autoUnlock,
      });
      if (options.json) return print(JSON.stringify(created, null, 2));
      const keys = [created.hasPassphrase ? "passphrase" : undefined, created.autoUnlock ? "auto-unlock" : undefined].filter(Boolean).join(" + ");
      print(
        `created volume ${created.name} (${formatSize(created.sizeBytes)}, ${formatSize(created.chunkSize)} chunks, durability ${created.durability}, keys: ${keys}), id ${created.id}`,
      );
    },
  );

volume
  .command("unlock")
  .argument("<name>", "volume name")
  .option("--passphrase-stdin", "read the passphrase from standard input (first line)")
  .description("unlock a volume with its passphrase so it can be attached (until the gateway restarts)")
  .action(async (name: string, options: { passphraseStdin?: boolean }) => {
    const [passphrase] = await readPassphrases({ fromStdin: !!options.passphraseStdin, prompts: [`passphrase for ${name}: `] });
    const client = apiClient();
    await client.request<VolumeView>("POST", `/api/v1/volumes/${encodeURIComponent(name)}/unlock`, { passphrase });
    print(`unlocked volume ${name}`);
  });

volume
  .command("lock")
  .argument("<name>", "volume name")
  .option("--json", "print the outcome as JSON")
  .description("lock a volume without auto-unlock: its gateway commits, closes it and drops its cached data; the next attach needs the passphrase")
  .action(async (name: string, options: { json?: boolean }) => {
    const client = apiClient();
    const outcome = await client.request<LockOutcome>("POST", `/api/v1/volumes/${encodeURIComponent(name)}/lock`, {});
    if (options.json) return print(JSON.stringify(outcome, null, 2));
    print(outcome.message);
  });

volume
  .command("passwd")
  .argument("<name>", "volume name")
  .option("--passphrase-stdin", "read the current passphrase and the new one from standard input (two lines; one line: only the new one)")
  .description("change a volume's passphrase (rewrites its key slots, no chunk object)")
  .action(async (name: string, options: { passphraseStdin?: boolean }) => {
    const answers = await readPassphrases({
      fromStdin: !!options.passphraseStdin,
      prompts: [`current passphrase for ${name} (empty if it has none): `, "new passphrase: "],
      confirm: true,
      allowEmptyFirst: true,
      minLength: MIN_PASSPHRASE_LENGTH,
    });
    const [oldPassphrase, newPassphrase] = answers.length === 1 ? [undefined, answers[0]] : answers;
    const client = apiClient();
    await client.request<VolumeView>("POST", `/api/v1/volumes/${encodeURIComponent(name)}/passphrase`, {
      oldPassphrase: oldPassphrase || undefined,
      newPassphrase,
    });
    print(`changed the passphrase of volume ${name}`);
  });

volume
  .command("recover")
  .requiredOption("--from-bucket", "rebuild the database's volumes, snapshots and clones from the configured bucket (headers and manifests)")
  .option("--passphrase-stdin", "a passphrase for volumes without auto-unlock (first line of standard input)")
  .option("--json", "print JSON")
  .description("restore volumes from the bucket alone into this server's (empty) database")
  .action(async (options: { passphraseStdin?: boolean; json?: boolean }) => {
    const passphrase = options.passphraseStdin ? (await readPassphrases({ fromStdin: true, prompts: [""] }))[0] : undefined;
    const client = apiClient();
    const outcome = await client.request<RecoverOutcome>("POST", "/api/v1/recover", { passphrase });
    if (options.json) return print(JSON.stringify(outcome, null, 2));
    for (const v of outcome.recovered) print(`recovered ${v.name} (${v.id}) at epoch ${v.epoch}, ${v.chunks} chunks, ${v.snapshots} snapshots`);
    for (const v of outcome.skipped) print(`skipped ${v.name} (${v.id}): ${v.reason}`);
    if (outcome.recovered.length === 0 && outcome.skipped.length === 0) print("no volumes in the bucket");
  });

volume
  .command("list")
  .option("--json", "print JSON")
  .description("list volumes")
  .action(async (options: { json?: boolean }) => {
    const client = apiClient();
    const { volumes } = await client.request<{ volumes: VolumeView[] }>("GET", "/api/v1/volumes");
    if (options.json) return print(JSON.stringify(volumes, null, 2));
    if (volumes.length === 0) return print("no volumes yet: stratus volume create NAME --size 10G");
    const rows = volumes.map((v) => [
      v.name,
      formatSize(v.sizeBytes),
      formatSize(v.chunkSize),
      formatSize(v.storedBytes),
      v.durability,
      v.unlocked ? "unlocked" : "locked",
      v.attached ? `attached (${v.attached.connections})` : v.state,
      v.lease ? `${v.lease.holder} since ${v.lease.since.slice(0, 16).replace("T", " ")}` : "-",
      v.id,
    ]);
    printTable(["NAME", "SIZE", "CHUNK", "STORED", "DURABILITY", "LOCK", "STATE", "HELD BY", "ID"], rows);
  });

volume
  .command("resize")
  .argument("<name>", "volume name")
  .requiredOption("--size <size>", "the new size, e.g. 20G", sizeOption)
  .option("--shrink", "allow a smaller size: the data past the new end is deleted (the volume must be detached)")
  .option("--json", "print the volume as JSON")
  .description("grow a volume (clients see the new size when they reconnect), or shrink it with --shrink")
  .action(async (name: string, options: { size: number; shrink?: boolean; json?: boolean }) => {
    const client = apiClient();
    const outcome = await client.request<ResizeOutcome>("PATCH", `/api/v1/volumes/${encodeURIComponent(name)}`, {
      size: options.size,
      confirmShrink: options.shrink ? name : undefined,
    });
    if (options.json) return print(JSON.stringify(outcome.volume, null, 2));
    const freed = outcome.chunksFreed > 0 ? ` (${outcome.chunksFreed} chunk objects past the end will be deleted)` : "";
    const reconnect = outcome.reconnectNeeded ? `; ${GROW_RECONNECT_NOTICE}` : "";
    print(`volume ${name} is now ${formatSize(outcome.volume.sizeBytes)}${freed}${reconnect}`);
  });

volume
  .command("detach")
  .argument("<name>", "volume name")
  .option("--force", "take it away without the holder's cooperation: the holder is fenced and its unflushed writes are kept aside as an orphan set")
  .option("--json", "print the outcome as JSON")
  .description("detach a volume from the device that holds it (asks its gateway to flush and let go; --force fences it)")
  .action(async (name: string, options: { force?: boolean; json?: boolean }) => {
    const client = apiClient();
    const outcome = await client.request<DetachOutcome>("POST", `/api/v1/volumes/${encodeURIComponent(name)}/detach`, { force: options.force === true });
    if (options.json) return print(JSON.stringify(outcome, null, 2));
    print(outcome.message);
  });

volume
  .command("delete")
  .argument("<name>", "volume name")
  .option("--no-wait", "return once the delete is queued")
  .description("delete a volume and every object it has in the bucket")
  .action(async (name: string, options: { wait: boolean }) => {
    const client = apiClient();
    const started = await client.request<DeleteStarted>("DELETE", `/api/v1/volumes/${encodeURIComponent(name)}`);
    if (!options.wait) return print(`deleting volume ${name} (id ${started.volumeId}) in the background`);
    let reported = -1;
    for (;;) {
      const progress = await client.request<DeleteProgress>("GET", `/api/v1/volumes/${encodeURIComponent(name)}/delete-progress`);
      if (progress.state === "completed") return print(`deleted volume ${name} (${progress.objectsDeleted} objects)`);
      if (progress.state === "failed") throw new CliError(`deleting volume ${name} failed: ${progress.error ?? "unknown error"} (it is retried)`);
      if (progress.objectsDeleted !== reported && process.stderr.isTTY) process.stderr.write(`\r${progress.objectsDeleted} objects deleted…`);
      reported = progress.objectsDeleted;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });

registerImageCommands(volume, apiClient, sizeOption);
registerDeviceCommands(program, apiClient);
registerAttachCommands(program, apiClient);
registerOrphanCommands(program, apiClient);
registerSnapshotCommands(program, volume, apiClient);

function durabilityOption(value: string): string {
  if (value !== "local" && value !== "cloud") throw new InvalidArgumentError("durability is local or cloud");
  return value;
}

function sizeOption(value: string): number {
  try {
    return parseSize(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/**
 * An error the user can act on, printed as one line. ConfigError and StartupError are also known by
 * name: the gateway is built apart from this module (bin/build.mjs) and throws its own copies of them.
 */
function isUserError(error: unknown): error is Error {
  if (error instanceof CliError || error instanceof ConfigError || error instanceof StartupError || error instanceof SizeParseError) return true;
  return error instanceof Error && (error.name === "ConfigError" || error.name === "StartupError");
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (isUserError(error)) {
    process.stderr.write(`stratus: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
