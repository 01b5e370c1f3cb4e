/**
 * `stratus volume import NAME URL --server-side`: the gateway downloads the image itself, as the
 * dashboard's "Import from URL" does (POST /api/v1/volumes/import). The CLI follows the job's progress
 * and, on Ctrl-C, cancels it (the job deletes its volume). s3:// URLs take their endpoint and keys from
 * STRATUS_IMPORT_S3_ENDPOINT, _REGION, _ACCESS_KEY_ID and _SECRET_ACCESS_KEY; they travel only in the
 * request body.
 */
import { formatSize, type ImportProgressView, type ImportStarted } from "@stratus/control";
import { CliError, type ApiClient } from "../api-client";
import { loadImportS3Settings } from "../devices/env";
import { print } from "../output";
import { copyProgress, type CopyProgress } from "./progress";

export interface ServerSideImport {
  name: string;
  url: string;
  chunkSize?: number;
  durability?: string;
  passphrase?: string;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function importServerSide(client: ApiClient, input: ServerSideImport, signal: AbortSignal): Promise<void> {
  const s3 = /^s3:\/\//i.test(input.url) ? loadImportS3Settings() : undefined;
  const started = await client.request<ImportStarted>("POST", "/api/v1/volumes/import", { ...input, s3 });
  process.stderr.write(`created volume ${input.name} (${formatSize(started.volume.sizeBytes)}); the gateway imports ${started.source} (${started.format})\n`);
  const path = `/api/v1/volumes/${encodeURIComponent(input.name)}/import-progress`;
  let bar: CopyProgress | undefined;
  let phase = "";
  try {
    for (;;) {
      if (signal.aborted) {
        bar?.stop();
        process.stderr.write(`cancelling the import of ${input.name}…\n`);
        await client.request("POST", `/api/v1/volumes/${encodeURIComponent(input.name)}/import-cancel`).catch(() => undefined);
        throw new CliError(`import interrupted: volume ${input.name} is being deleted`);
      }
      const view = await client.request<ImportProgressView>("GET", path);
      const progress = view.progress;
      if (progress && progress.phase !== phase && progress.bytesTotal > 0) {
        bar?.stop();
        phase = progress.phase;
        bar = copyProgress(`${phase} ${input.name}`, progress.bytesTotal);
      }
      if (progress && bar && progress.bytesTotal > 0) bar.update(Math.floor((100 * progress.bytesDone) / progress.bytesTotal));
      if (view.state === "completed") break;
      if (view.state === "failed" || view.state === "cancelled") throw new CliError(`import ${view.state}: ${view.error ?? "cancelled"}`);
      await pause(500);
    }
  } finally {
    bar?.stop();
  }
  print(`imported ${started.source} (${started.format}) into volume ${input.name}, id ${started.volume.id}`);
}
