/**
 * An embedded PGlite database belongs to exactly one process: two PGlite instances on one data folder
 * both start happily (PGlite writes a fake postmaster.pid and never checks it) and then corrupt each
 * other. So openDatabase() takes this lock file first: `stratus.lock` in the data folder holding the
 * owner's pid. A lock left by a process that no longer exists (kill -9, power loss) is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DbError } from "./errors";

export const LOCK_FILE_NAME = "stratus.lock";

export interface DataDirLock {
  release(): void;
}

export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const lockPath = join(dataDir, LOCK_FILE_NAME);
  // Two attempts: the second follows the removal of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, "wx"); // O_EXCL: exactly one opener creates the file
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return { release: () => releaseIfOurs(lockPath) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new DbError("DATABASE_OPEN_FAILED", `cannot create the lock file ${lockPath}: ${(err as Error).message}`, { cause: err });
      }
    }
    const holder = readHolderPid(lockPath);
    if (holder !== undefined && (holder === process.pid || isProcessAlive(holder))) {
      throw new DbError(
        "DATABASE_LOCKED",
        `the embedded database in ${dataDir} is in use by process ${holder}` +
          (holder === process.pid ? " (this process already has it open)" : "") +
          `; an embedded database belongs to one process — go through the running Stratus server, or stop it` +
          ` (if no such process is running Stratus, delete ${lockPath})`,
      );
    }
    // Stale: move it aside rather than unlinking in place, so that of two processes racing to take over
    // only one removes it; the other's rename fails and its next O_EXCL create decides.
    try {
      renameSync(lockPath, `${lockPath}.stale-${process.pid}`);
      rmSync(`${lockPath}.stale-${process.pid}`, { force: true });
    } catch {
      // someone else took it over first; the next attempt's O_EXCL open settles who owns it
    }
  }
  throw new DbError("DATABASE_LOCKED", `the embedded database in ${dataDir} is being opened by another process`);
}

function readHolderPid(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lockPath, "utf8").trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined; // vanished between our create attempt and this read: treat as stale
  }
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: existence check only
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, but belongs to another user
  }
}

function releaseIfOurs(lockPath: string): void {
  if (readHolderPid(lockPath) === process.pid) rmSync(lockPath, { force: true });
}
