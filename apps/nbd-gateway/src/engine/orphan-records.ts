/**
 * Keeps the database's orphan_sets rows true to this gateway's orphan folders (<cache>/orphans/), so the
 * dashboard, REST and CLI can show, export and discard them. The folder is the truth about the data;
 * the row is how others see it. Recording is best effort (the database may be down when a fence
 * happens): each start reconciles both ways — folders without rows get rows, this gateway's rows whose
 * folder is gone are deleted, and folders of rows marked discarded are deleted with their rows. A
 * discard elsewhere reaches us on the orphan channel (Redis pub/sub) and deletes the folder at once.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { orphanSetsChannel, parseOrphanMessage, type OrphanDiscardNotice } from "@stratus/control";
import { deleteOrphanSet, listGatewayOrphanSets, recordOrphanSet, type Db, type OrphanSetRow } from "@stratus/db";
import { listDirtyChunks } from "@stratus/storage";
import type { Redis } from "ioredis";
import type { Logger } from "../logger";
import { throttledErrorLog } from "../redis/error-log";
import { ORPHANS_DIR, type OrphanSet } from "./orphan-sets";

export interface OrphanRecordsOptions {
  db: Db;
  /** This gateway's stable id (gateway-identity.ts): rows name the gateway whose disk holds a set. */
  gatewayId: string;
  cacheDir: string;
  logger: Logger;
}

export interface ReconcileOutcome {
  recorded: number;
  rowsDeleted: number;
  foldersDeleted: number;
}

/** `<volumeId>-<token>` or `<volumeId>-<token>.<n>`, as orphanCache names folders. */
const FOLDER_NAME = /^(vol_[1-9A-HJ-NP-Za-km-z]+)-(\d+)(?:\.\d+)?$/;

export class OrphanRecords {
  constructor(private readonly options: OrphanRecordsOptions) {}

  get orphansDir(): string {
    return path.join(this.options.cacheDir, ORPHANS_DIR);
  }

  /** Records a set the engines just made; a failure is logged, and the next start records it. */
  async record(moved: { dir: string; set: OrphanSet }): Promise<OrphanSetRow | undefined> {
    try {
      return await this.#record(path.basename(moved.dir), moved.set);
    } catch (error) {
      this.options.logger.warn(
        { err: error, orphanSet: moved.dir, volumeId: moved.set.volumeId },
        "could not record an orphan set in the database; the next start records it",
      );
      return undefined;
    }
  }

  async #record(dirName: string, set: OrphanSet): Promise<OrphanSetRow | undefined> {
    const dir = path.join(this.orphansDir, dirName);
    const row = await recordOrphanSet(this.options.db, {
      volumeId: set.volumeId,
      gatewayId: this.options.gatewayId,
      dirName,
      fencingToken: set.fencingToken,
      bytes: set.bytes,
      dirtyChunks: dirtyChunkCount(dir),
      reason: set.reason,
      orphanedAt: new Date(set.orphanedAt),
    });
    if (row === undefined) {
      // The volume was deleted: its data has nowhere to go (as removeOrphanSets does on a delete).
      rmSync(dir, { recursive: true, force: true });
      this.options.logger.info({ volumeId: set.volumeId, orphanSet: dirName }, "orphan set of a deleted volume removed");
    }
    return row;
  }

  /** Brings rows and folders together (at start); throws when the database cannot be reached. */
  async reconcile(): Promise<ReconcileOutcome> {
    const outcome: ReconcileOutcome = { recorded: 0, rowsDeleted: 0, foldersDeleted: 0 };
    const rows = await listGatewayOrphanSets(this.options.db, this.options.gatewayId);
    // Read synchronously after the rows: a set the engines make meanwhile is whole (orphanCache is synchronous).
    const folders = this.#folders();
    const byDir = new Map(rows.map((row) => [row.dirName, row]));
    for (const row of rows) {
      const present = folders.has(row.dirName);
      if (row.discardedAt !== null) {
        if (present) {
          this.#removeFolder(row.dirName);
          outcome.foldersDeleted++;
        }
        await deleteOrphanSet(this.options.db, row.id);
        outcome.rowsDeleted++;
      } else if (!present) {
        await deleteOrphanSet(this.options.db, row.id);
        outcome.rowsDeleted++;
      }
    }
    for (const [dirName, set] of folders) {
      if (byDir.has(dirName)) continue;
      if (set === undefined) {
        this.options.logger.warn({ orphanSet: dirName }, "an orphan folder whose volume cannot be told from its name: left alone");
        continue;
      }
      const row = await this.#record(dirName, set);
      if (row !== undefined) outcome.recorded++;
      else outcome.foldersDeleted++;
    }
    if (outcome.recorded + outcome.rowsDeleted + outcome.foldersDeleted > 0)
      this.options.logger.info({ ...outcome }, "orphan sets reconciled with the database");
    return outcome;
  }

  /** The folders under orphans/, each with what its orphan.json (or, without one, its name) says. */
  #folders(): Map<string, OrphanSet | undefined> {
    const out = new Map<string, OrphanSet | undefined>();
    if (!existsSync(this.orphansDir)) return out;
    for (const name of readdirSync(this.orphansDir)) {
      const dir = path.join(this.orphansDir, name);
      if (!statSync(dir).isDirectory()) continue;
      out.set(name, readSetFile(dir) ?? setFromName(name, dir));
    }
    return out;
  }

  /** Deletes the folder of a set discarded elsewhere, then its row. Notices for other gateways are ignored. */
  async discard(notice: OrphanDiscardNotice): Promise<boolean> {
    if (notice.gatewayId !== this.options.gatewayId) return false;
    this.#removeFolder(notice.dirName);
    await deleteOrphanSet(this.options.db, notice.orphanSetId);
    this.options.logger.info({ orphanSetId: notice.orphanSetId, orphanSet: notice.dirName }, "discarded orphan set deleted");
    return true;
  }

  #removeFolder(dirName: string): void {
    // The name came from the database or Redis: never let it reach outside orphans/.
    const dir = path.join(this.orphansDir, dirName);
    if (path.dirname(dir) !== this.orphansDir || dirName.startsWith(".")) throw new Error(`not an orphan folder name: ${dirName}`);
    rmSync(dir, { recursive: true, force: true });
  }

  /** Subscribes to the orphan channel; returns the closer for the shutdown steps. */
  async listen(client: Redis, prefix: string): Promise<() => Promise<void>> {
    const events = client.duplicate();
    events.on("error", throttledErrorLog(this.options.logger, "Redis subscriber error (retrying)"));
    events.on("message", (_channel: string, text: string) => {
      const notice = parseOrphanMessage(text);
      if (notice === undefined) return;
      this.discard(notice).catch((error: unknown) =>
        this.options.logger.error({ err: error, orphanSetId: notice.orphanSetId }, "deleting a discarded orphan set failed; the next start retries"),
      );
    });
    await events.subscribe(orphanSetsChannel(prefix));
    return async () => {
      events.disconnect();
    };
  }
}

function dirtyChunkCount(dir: string): number {
  try {
    return listDirtyChunks(dir).length;
  } catch {
    return 0; // an unreadable journal: the set is still shown, with its bytes
  }
}

function readSetFile(dir: string): OrphanSet | undefined {
  try {
    const set = JSON.parse(readFileSync(path.join(dir, "orphan.json"), "utf8")) as OrphanSet;
    return typeof set.volumeId === "string" && Number.isSafeInteger(set.fencingToken) ? set : undefined;
  } catch {
    return undefined;
  }
}

/** A folder moved aside by a run that died before writing orphan.json: what its name and files say. */
function setFromName(name: string, dir: string): OrphanSet | undefined {
  const match = FOLDER_NAME.exec(name);
  if (!match) return undefined;
  let bytes = 0;
  const chunks = path.join(dir, "c");
  if (existsSync(chunks)) for (const file of readdirSync(chunks)) bytes += statSync(path.join(chunks, file)).size;
  return {
    volumeId: match[1]!,
    fencingToken: Number(match[2]),
    bytes,
    orphanedAt: statSync(dir).mtime.toISOString(),
    reason: "the volume was taken by another holder (the set's orphan.json is missing)",
  };
}
