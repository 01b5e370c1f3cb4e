/**
 * `stratus snapshot create|list|delete` and `stratus volume clone`, through the REST API. A snapshot
 * is served read-only as the NBD export VOL@NAME; a clone is a new volume that shares its chunks.
 */
import type { Command } from "commander";
import { formatSize, MIN_PASSPHRASE_LENGTH, type SnapshotView, type VolumeView } from "@stratus/control";
import { CliError, type ApiClient } from "./api-client";
import { print, printTable } from "./output";
import { readPassphrases } from "./passphrase-input";

const volumePath = (name: string) => `/api/v1/volumes/${encodeURIComponent(name)}`;

export function registerSnapshotCommands(program: Command, volume: Command, client: () => ApiClient): void {
  const snapshot = program.command("snapshot").description("pin a volume's committed state under a name; read it as the export VOL@NAME");

  snapshot
    .command("create")
    .argument("<volume>", "volume name")
    .argument("<name>", "snapshot name")
    .option("--json", "print the snapshot as JSON")
    .description("snapshot a volume (an attached volume's gateway commits first: the snapshot holds every flushed write)")
    .action(async (volumeName: string, name: string, options: { json?: boolean }) => {
      const created = await client().request<SnapshotView>("POST", `${volumePath(volumeName)}/snapshots`, { snapshot: name });
      if (options.json) return print(JSON.stringify(created, null, 2));
      print(`created snapshot ${created.exportName} at epoch ${created.epoch} (${formatSize(created.storedBytes)} in the bucket, none of it new)`);
      print(`read it: nbdcopy nbd://…/${created.exportName} out.img  ·  clone it: stratus volume clone ${created.exportName} NEWNAME`);
    });

  snapshot
    .command("list")
    .argument("<volume>", "volume name")
    .option("--json", "print the snapshots as JSON")
    .description("a volume's snapshots: size, and the bytes only each one holds (what deleting it frees)")
    .action(async (volumeName: string, options: { json?: boolean }) => {
      const { snapshots } = await client().request<{ snapshots: SnapshotView[] }>("GET", `${volumePath(volumeName)}/snapshots`);
      if (options.json) return print(JSON.stringify(snapshots, null, 2));
      if (snapshots.length === 0) return print(`volume ${volumeName} has no snapshots`);
      printTable(
        ["EXPORT", "CREATED", "EPOCH", "SIZE", "STORED", "ONLY IN IT"],
        snapshots.map((s) => [s.exportName, s.createdAt, String(s.epoch), formatSize(s.sizeBytes), formatSize(s.storedBytes), formatSize(s.exclusiveBytes)]),
      );
    });

  snapshot
    .command("delete")
    .argument("<volume>", "volume name")
    .argument("<name>", "snapshot name")
    .description("delete a snapshot; what only it held is freed after the GC grace (clones made from it keep working)")
    .action(async (volumeName: string, name: string) => {
      const outcome = await client().request<{ message: string }>("DELETE", `${volumePath(volumeName)}/snapshots/${encodeURIComponent(name)}`);
      print(outcome.message);
    });

  volume
    .command("clone")
    .argument("<snapshot>", "the snapshot, as VOLUME@SNAPSHOT")
    .argument("<name>", "the new volume's name")
    .option("--passphrase-stdin", "read the clone's passphrase from standard input (first line); also tried on a locked parent")
    .option("--no-auto-unlock", "no auto-unlock slot (default: as the parent); needs a passphrase")
    .option("--json", "print the volume as JSON")
    .description("make a new volume from a snapshot, at once: it shares the snapshot's chunks; its writes never change the parent")
    .action(async (source: string, name: string, options: { passphraseStdin?: boolean; autoUnlock: boolean; json?: boolean }) => {
      const at = source.lastIndexOf("@");
      if (at <= 0) throw new CliError(`name the snapshot as VOLUME@SNAPSHOT, not ${JSON.stringify(source)}`);
      const passphrase =
        options.passphraseStdin || !options.autoUnlock
          ? (
              await readPassphrases({
                fromStdin: !!options.passphraseStdin,
                prompts: [`passphrase for ${name}: `],
                confirm: true,
                minLength: MIN_PASSPHRASE_LENGTH,
              })
            )[0]
          : undefined;
      const created = await client().request<VolumeView>("POST", `${volumePath(source.slice(0, at))}/clone`, {
        snapshot: source.slice(at + 1),
        name,
        ...(passphrase ? { passphrase } : {}),
        ...(options.autoUnlock ? {} : { autoUnlock: false }),
      });
      if (options.json) return print(JSON.stringify(created, null, 2));
      print(
        `cloned ${source} as volume ${created.name} (${formatSize(created.sizeBytes)}, attachable now; it shares ${formatSize(created.storedBytes)} with its parent)`,
      );
    });
}
