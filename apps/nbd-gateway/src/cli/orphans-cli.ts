/**
 * `stratus orphans list|export|discard`: the uncommitted data gateways kept aside when another holder
 * took a volume (orphan sets), through the REST API. Export writes a sparse raw image of the volume
 * with the set's never-committed chunks at their offsets. It takes the set from the first place that
 * has it: this machine's data directory (STRATUS_DATA_DIR, when the holding gateway runs here: read
 * directly, nothing crosses the network), else the server's download (when the server's own gateway
 * holds it); otherwise it names the gateway whose host to run it on.
 */
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { Command } from "commander";
import { formatSize, ORPHANS_FOLDER, type OrphanSetView } from "@stratus/control";
import { writeDirtyImage } from "@stratus/storage";
import { CliError, type ApiClient } from "./api-client";
import { print, printTable } from "./output";

type OrphanSetDetail = OrphanSetView & { sizeBytes: number; chunkSize: number; dirName: string };

/** Blocks of zeros this long are skipped (left as holes) when a downloaded image is written. */
const SPARSE_BLOCK = 64 * 1024;
const ZEROS = Buffer.alloc(SPARSE_BLOCK);

/** Writes a byte stream to `out` (0600), leaving all-zero blocks as holes; the file gets exactly `size` bytes. */
export async function writeSparse(stream: AsyncIterable<Uint8Array>, out: string, size: number): Promise<number> {
  const fd = openSync(out, "w", 0o600);
  let position = 0;
  let pending = Buffer.alloc(0);
  const flushBlocks = (final: boolean) => {
    let offset = 0;
    while (pending.length - offset >= SPARSE_BLOCK || (final && offset < pending.length)) {
      const block = pending.subarray(offset, offset + SPARSE_BLOCK);
      if (!block.equals(ZEROS.subarray(0, block.length))) {
        let done = 0;
        while (done < block.length) done += writeSync(fd, block, done, block.length - done, position + done);
      }
      position += block.length;
      offset += block.length;
    }
    pending = pending.subarray(offset);
  };
  try {
    for await (const piece of stream) {
      pending = pending.length === 0 ? Buffer.from(piece) : Buffer.concat([pending, piece]);
      flushBlocks(false);
    }
    flushBlocks(true);
    if (position !== size) throw new CliError(`the download ended after ${position} of ${size} bytes; ${out} is incomplete`);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
  return position;
}

/** The set's folder in this machine's data directory, when it is the one the row names. */
function localFolder(dataDir: string, set: OrphanSetDetail): string | undefined {
  const dir = path.join(dataDir, "cache", ORPHANS_FOLDER, set.dirName);
  try {
    const recorded = JSON.parse(readFileSync(path.join(dir, "orphan.json"), "utf8")) as { volumeId?: string; fencingToken?: number };
    return recorded.volumeId === set.volumeId && recorded.fencingToken === set.fencingToken ? dir : undefined;
  } catch {
    return existsSync(path.join(dir, "c")) ? dir : undefined;
  }
}

export async function exportOrphanSetToFile(client: ApiClient, id: string, out: string): Promise<{ from: "local" | "server"; set: OrphanSetDetail }> {
  const set = await client.request<OrphanSetDetail>("GET", `/api/v1/orphans/${encodeURIComponent(id)}`);
  const dir = localFolder(client.dataDir, set);
  if (dir !== undefined) {
    writeDirtyImage(dir, { sizeBytes: set.sizeBytes, chunkSize: set.chunkSize }, out);
    return { from: "local", set };
  }
  if (!set.exportable) {
    throw new CliError(
      `orphan set ${id} is on the disk of gateway ${set.gatewayId}: run this command on that gateway's host (with its STRATUS_DATA_DIR), or through the dashboard it serves`,
    );
  }
  const response = await client.download(`/api/v1/orphans/${encodeURIComponent(id)}/image`);
  if (response.body === null) throw new CliError("the server sent no image");
  await writeSparse(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), out, set.sizeBytes);
  return { from: "server", set };
}

/** `apiClient` builds the client for the server the environment names (with the program-wide --insecure). */
export function registerOrphanCommands(program: Command, apiClient: () => ApiClient): void {
  const orphans = program
    .command("orphans")
    .description("data a gateway kept aside uncommitted when another holder took the volume (orphan sets): list, export, discard");

  orphans
    .command("list")
    .option("--volume <name>", "only this volume's sets")
    .option("--json", "print JSON")
    .description("list the orphan sets of your volumes, newest first")
    .action(async (options: { volume?: string; json?: boolean }) => {
      const client = apiClient();
      const where = options.volume === undefined ? "/api/v1/orphans" : `/api/v1/volumes/${encodeURIComponent(options.volume)}/orphans`;
      const { orphanSets } = await client.request<{ orphanSets: OrphanSetView[] }>("GET", where);
      if (options.json) return print(JSON.stringify(orphanSets, null, 2));
      if (orphanSets.length === 0) return print("no orphan sets");
      printTable(
        ["ID", "VOLUME", "SIZE", "DIRTY CHUNKS", "ORPHANED", "GATEWAY", "REASON"],
        orphanSets.map((set) => [
          set.id,
          set.volumeName,
          formatSize(set.bytes),
          String(set.dirtyChunks),
          set.orphanedAt.slice(0, 19).replace("T", " "),
          set.gatewayId,
          set.reason,
        ]),
      );
    });

  orphans
    .command("export")
    .argument("<id>", "the orphan set's id (stratus orphans list)")
    .requiredOption("--out <file>", "the raw image to write: the volume's size, sparse, the set's uncommitted chunks at their offsets")
    .description("write an orphan set's never-committed writes as a raw image of the volume (for cmp, dd, or a loop mount)")
    .action(async (id: string, options: { out: string }) => {
      const client = apiClient();
      const { from, set } = await exportOrphanSetToFile(client, id, options.out);
      const source = from === "local" ? `this machine's data directory` : `the server's gateway ${set.gatewayId}`;
      print(`wrote ${options.out}: ${formatSize(set.sizeBytes)} image of ${set.volumeName}, ${set.dirtyChunks} uncommitted chunk(s) from ${source}`);
    });

  orphans
    .command("discard")
    .argument("<id>", "the orphan set's id (stratus orphans list)")
    .description("delete an orphan set's data for good (its gateway deletes the folder)")
    .action(async (id: string) => {
      const client = apiClient();
      await client.request("DELETE", `/api/v1/orphans/${encodeURIComponent(id)}`);
      print(`discarded orphan set ${id}`);
    });
}
