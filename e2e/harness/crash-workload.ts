/**
 * The client side of the crash tests: batches of non-overlapping writes in flight together, then a
 * FLUSH, over and over until the connection dies (the gateway was killed) or `until` says stop;
 * and a whole-volume read-back that names the version every block holds.
 */
import { rm, readFile } from "node:fs/promises";
import path from "node:path";
import { BLOCK, CrashModel } from "./crash-model";
import { NbdDisconnectedError, type NbdSocketClient } from "./nbd-socket-client";

export interface WorkloadOptions {
  random: () => number;
  /** Writes in flight at once (a batch), at most. */
  queueDepth?: number;
  /** Blocks per write, at most (4 KiB each). */
  maxBlocks?: number;
  /** Checked before each batch: stop cleanly when it returns true. */
  until?: () => boolean;
}

export interface WorkloadResult {
  batches: number;
  writesAcked: number;
  flushesCompleted: number;
  /** How it ended: "stopped" by `until`, or "disconnected" (the server went away mid-request). */
  ended: "stopped" | "disconnected";
  /** What was in flight when the connection died: "write", "flush" or "idle". */
  diedDuring?: "write" | "flush";
}

export async function runFlushWorkload(client: NbdSocketClient, model: CrashModel, options: WorkloadOptions): Promise<WorkloadResult> {
  const { random, queueDepth = 8, maxBlocks = 32, until } = options;
  const result: WorkloadResult = { batches: 0, writesAcked: 0, flushesCompleted: 0, ended: "stopped" };
  try {
    while (!until?.()) {
      const batch = model.planBatch(random, 1 + Math.floor(random() * queueDepth), maxBlocks);
      result.diedDuring = "write";
      const acks = batch.map((write) => {
        model.sent(write);
        return client.write(write.block * BLOCK, CrashModel.data(write)).then(() => void result.writesAcked++);
      });
      const settled = await Promise.allSettled(acks);
      const failed = settled.find((s) => s.status === "rejected");
      if (failed) throw failed.reason;
      result.diedDuring = "flush";
      await client.flush();
      model.flushed();
      result.flushesCompleted++;
      result.batches++;
      result.diedDuring = undefined;
    }
    return result;
  } catch (error) {
    if (!(error instanceof NbdDisconnectedError)) throw error;
    return { ...result, ended: "disconnected" };
  }
}

/** Reads the whole volume (1 MiB requests, 8 in flight) and returns each block's version. */
export async function readVersions(client: NbdSocketClient): Promise<Uint32Array> {
  const piece = 2 ** 20;
  const image = Buffer.alloc(client.size);
  const offsets: number[] = [];
  for (let offset = 0; offset < client.size; offset += piece) offsets.push(offset);
  const worker = async () => {
    for (let offset = offsets.shift(); offset !== undefined; offset = offsets.shift()) {
      const length = Math.min(piece, client.size - offset);
      (await client.read(offset, length)).copy(image, offset);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return CrashModel.versionsIn(image);
}

/**
 * The loss of the gateway's machine, after its process was killed: the private redis-server it ran
 * (found by its pid file) dies too, and the local cache is gone. The database (embedded here) and
 * the bucket survive, as they would on their own servers.
 */
export async function loseMachineState(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, "redis.pid");
  const pid = Number((await readFile(pidFile, "utf8").catch(() => "")).split("\n")[0]);
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await rm(path.join(dataDir, "cache"), { recursive: true, force: true });
}
