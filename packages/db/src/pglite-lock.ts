/**
 * An embedded PGlite database belongs to exactly one process: two PGlite instances on one data folder
 * both start happily (PGlite writes a fake postmaster.pid and never checks it) and then corrupt each
 * other. So openDatabase() takes this lock file first: `stratus.lock` in the data folder holding the
 * owner's pid and, on Linux, its start time. A lock whose holder is gone is taken over; "gone" includes
 * a zombie nobody reaped yet and a pid the kernel has since given to another process (its start time
 * differs), so a kill -9 never blocks the next start.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DbError } from "./errors";

export const LOCK_FILE_NAME = "stratus.lock";

export interface DataDirLock {
  release(): void;
}

/** Who holds a lock: the pid and, where /proc exists, the process's start time in clock ticks. */
export interface LockHolder {
  pid: number;
  startTime: string | undefined;
}

export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const lockPath = join(dataDir, LOCK_FILE_NAME);
  const self: LockHolder = { pid: process.pid, startTime: processStartTime(process.pid) };
  // Two attempts: the second follows the removal of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, "wx", 0o600); // O_EXCL: exactly one opener creates the file
      try {
        writeSync(fd, `${self.pid}\n${self.startTime ?? ""}\n`);
      } finally {
        closeSync(fd);
      }
      return { release: () => releaseIfOurs(lockPath) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new DbError("DATABASE_OPEN_FAILED", `cannot create the lock file ${lockPath}: ${(err as Error).message}`, { cause: err });
      }
    }
    const holder = readHolder(lockPath);
    if (holder !== undefined && (holder.pid === process.pid || isHolderAlive(holder))) {
      throw new DbError(
        "DATABASE_LOCKED",
        `the embedded database in ${dataDir} is in use by process ${holder.pid}` +
          (holder.pid === process.pid ? " (this process already has it open)" : "") +
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

function readHolder(lockPath: string): LockHolder | undefined {
  try {
    const [pidLine, startLine] = readFileSync(lockPath, "utf8").split("\n");
    const pid = Number.parseInt(pidLine?.trim() ?? "", 10);
    if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
    return { pid, startTime: startLine?.trim() || undefined };
  } catch {
    return undefined; // vanished between our create attempt and this read: treat as stale
  }
}

/** Fields of /proc/PID/stat after the command name, which may itself hold spaces and parentheses. */
function procStatFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** Field 22 of proc(5)'s stat: start time after boot in clock ticks. Undefined without /proc. */
export function processStartTime(pid: number): string | undefined {
  return procStatFields(pid)?.[19];
}

/**
 * Alive means running and the same process that wrote the lock: a zombie (exited, not reaped) or dead
 * task holds nothing, and a different start time means the pid was reused.
 */
export function isHolderAlive(holder: LockHolder): boolean {
  if (process.platform === "linux") {
    const fields = procStatFields(holder.pid);
    if (fields === undefined) return false;
    const state = fields[0];
    if (state === "Z" || state === "X" || state === "x") return false;
    return holder.startTime === undefined || fields[19] === holder.startTime;
  }
  try {
    process.kill(holder.pid, 0); // signal 0: existence check only
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, but belongs to another user
  }
}

function releaseIfOurs(lockPath: string): void {
  if (readHolder(lockPath)?.pid === process.pid) rmSync(lockPath, { force: true });
}
