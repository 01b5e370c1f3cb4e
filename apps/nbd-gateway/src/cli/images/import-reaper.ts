/**
 * The import's second line of defence: a small detached process (`stratus volume import-reaper`, hidden)
 * started once the import has created its volume. The import tells it the volume and nbdcopy's pid on
 * its standard input and says "done" when the volume is complete or already cleaned up. If that input
 * ends without "done" (the CLI was SIGKILLed, OOM-killed, its terminal vanished), the reaper stops
 * nbdcopy and deletes the volume, so even then no half-imported volume stays visible.
 */
import { spawn } from "node:child_process";
import type { Writable } from "node:stream";
import type { Command } from "commander";
import type { VolumeView } from "@stratus/control";
import type { ApiClient } from "../api-client";

export interface ReaperHandle {
  /** nbdcopy's pid (its own process group): stopped before the delete. */
  watchCopy(pid: number): void;
  /** The import finished or cleaned up after itself: the reaper exits without touching anything. */
  release(): void;
}

/** Starts the reaper for volume `name` (id `volumeId`); it outlives this process. */
export function startReaper(name: string, volumeId: string): ReaperHandle {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, "volume", "import-reaper"], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  child.unref();
  const input = child.stdin as Writable;
  input.on("error", () => {}); // a reaper that died early is not the import's failure
  input.write(`${JSON.stringify({ name, volumeId })}\n`);
  return {
    watchCopy: (pid) => input.write(`${JSON.stringify({ copyPid: pid })}\n`),
    release: () => input.end("done\n"),
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/** The reaper itself: waits for its input to end, and cleans up unless it ended with "done". */
export async function runReaper(client: ApiClient, deletePartial: (client: ApiClient, name: string) => Promise<void>): Promise<void> {
  const lines = (await readAll(process.stdin)).split("\n").filter(Boolean);
  if (lines.includes("done")) return;
  let name: string | undefined;
  let volumeId: string | undefined;
  for (const line of lines) {
    try {
      const message = JSON.parse(line) as { name?: string; volumeId?: string; copyPid?: number };
      if (message.name) ({ name, volumeId } = message as { name: string; volumeId: string });
      if (message.copyPid) {
        try {
          process.kill(-message.copyPid, "SIGTERM");
        } catch {
          // already gone
        }
      }
    } catch {
      // not ours
    }
  }
  if (!name) return;
  // Only the volume this import created: never another one that took the name since.
  const { volumes } = await client.request<{ volumes: VolumeView[] }>("GET", "/api/v1/volumes");
  if (volumes.find((v) => v.name === name)?.id !== volumeId) return;
  await deletePartial(client, name);
}

export function registerReaperCommand(volume: Command, apiClient: () => ApiClient, deletePartial: (client: ApiClient, name: string) => Promise<void>): void {
  volume
    .command("import-reaper", { hidden: true })
    .description("internal: deletes an import's volume if the importing CLI dies")
    .action(() => runReaper(apiClient(), deletePartial));
}
