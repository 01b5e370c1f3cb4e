/**
 * `stratus`: run the gateway, and manage volumes on a running one.
 */
import { Command, InvalidArgumentError } from "commander";
import { ConfigError, loadClientConfig, loadGatewayConfig } from "../config/env";
import { formatSize, parseSize, SizeParseError } from "../config/units";
import type { VolumeView } from "../control/volume-verbs";
import { StartupError } from "../gateway/open-store";
import { startGateway } from "../gateway/start";
import { createLogger } from "../logger";
import { ApiClient, CliError } from "./api-client";

const program = new Command()
  .name("stratus")
  .description("Disks that live in object storage: run the NBD gateway and manage volumes.")
  .showHelpAfterError();

program
  .command("gateway")
  .description("serve NBD and the control API (the embedded default: PGlite + a local bucket directory)")
  .action(runGateway);

const volume = program.command("volume").description("create, list and delete volumes on a running server");

volume
  .command("create")
  .argument("<name>", "volume name; also its NBD export name")
  .requiredOption("--size <size>", "size, e.g. 10G, 500M, 2T", sizeOption)
  .option("--chunk-size <size>", "chunk size, a power of two from 64K to 64M", sizeOption, 2 ** 20)
  .option("--json", "print the volume as JSON")
  .description("create a volume (attachable at once)")
  .action(async (name: string, options: { size: number; chunkSize: number; json?: boolean }) => {
    const client = new ApiClient(loadClientConfig());
    const created = await client.request<VolumeView>("POST", "/api/v1/volumes", {
      name,
      size: options.size,
      chunkSize: options.chunkSize,
    });
    if (options.json) return print(JSON.stringify(created, null, 2));
    print(`created volume ${created.name} (${formatSize(created.sizeBytes)}, ${formatSize(created.chunkSize)} chunks), id ${created.id}`);
  });

volume
  .command("list")
  .option("--json", "print JSON")
  .description("list volumes")
  .action(async (options: { json?: boolean }) => {
    const client = new ApiClient(loadClientConfig());
    const { volumes } = await client.request<{ volumes: VolumeView[] }>("GET", "/api/v1/volumes");
    if (options.json) return print(JSON.stringify(volumes, null, 2));
    if (volumes.length === 0) return print("no volumes yet: stratus volume create NAME --size 10G");
    const rows = volumes.map((v) => [
      v.name,
      formatSize(v.sizeBytes),
      formatSize(v.chunkSize),
      v.storedBytes === null ? "-" : formatSize(v.storedBytes),
      v.attached ? `attached (${v.attached.connections})` : v.state,
      v.id,
    ]);
    printTable(["NAME", "SIZE", "CHUNK", "STORED", "STATE", "ID"], rows);
  });

volume
  .command("delete")
  .argument("<name>", "volume name")
  .description("delete a volume and every object it has in the bucket")
  .action(async (name: string) => {
    const client = new ApiClient(loadClientConfig());
    await client.request<void>("DELETE", `/api/v1/volumes/${encodeURIComponent(name)}`);
    print(`deleted volume ${name}`);
  });

async function runGateway(): Promise<void> {
  const config = loadGatewayConfig();
  const logger = createLogger(config.logLevel);
  const gateway = await startGateway(config, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping: flushing open volumes");
    gateway.stop().then(
      () => {
        logger.info("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "stopped with errors");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

function sizeOption(value: string): number {
  try {
    return parseSize(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) print(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CliError || error instanceof ConfigError || error instanceof StartupError || error instanceof SizeParseError) {
    process.stderr.write(`stratus: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
