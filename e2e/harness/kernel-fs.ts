/**
 * A kernel filesystem on an NBD export without a kernel NBD client (the test machines have none):
 * nbdfuse exposes the export as a file, a loop device turns the file into a block device, and the
 * kernel's ext4 mounts it. Each step returns its own undo so tests can register it for cleanup.
 */
import { spawn } from "node:child_process";
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import type { CleanupStack } from "./cleanup";
import { killGroup, run, runOk, waitFor } from "./exec";

export interface NbdFuseFile {
  /** The file that is the export: MOUNTDIR/disk.img */
  file: string;
  mountDir: string;
  pid: number;
  /** `fusermount3 -u`, then waits for nbdfuse to exit (kills it if it does not). Idempotent. */
  detach(): Promise<void>;
}

/** Runs `nbdfuse -P PIDFILE MOUNTDIR/disk.img URI` in its own session and waits until it serves. */
export async function attachNbdFuse(mountDir: string, uri: string): Promise<NbdFuseFile> {
  await mkdir(mountDir, { recursive: true });
  const pidFile = `${mountDir}.pid`;
  await rm(pidFile, { force: true });
  const file = path.join(mountDir, "disk.img");
  // detached = setsid: nbdfuse must not depend on the lifetime of whatever started it.
  const child = spawn("nbdfuse", ["-P", pidFile, file, uri], { detached: true, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));

  const detach = async (): Promise<void> => {
    if (gone) {
      // nbdfuse can die on its own (its NBD server was killed) and leave a dead FUSE mount behind
      // (ENOTCONN); take it away lazily so the folder can be reused or removed.
      if (await isMounted(mountDir)) await run("fusermount3", ["-u", "-z", mountDir], { timeoutMs: 30_000 });
      return;
    }
    await run("fusermount3", ["-u", mountDir], { timeoutMs: 30_000 });
    const timer = setTimeout(() => killGroup(child.pid, "SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
    if (await isMounted(mountDir)) await run("fusermount3", ["-u", "-z", mountDir], { timeoutMs: 30_000 });
  };

  try {
    // nbdfuse writes its pid file once it is ready to serve.
    await waitFor(
      "nbdfuse to serve",
      async () => {
        if (gone) throw new Error(`nbdfuse exited: ${stderr}`);
        const pid = await readFile(pidFile, "utf8").catch(() => "");
        return pid.trim() !== "" ? pid : undefined;
      },
      { timeoutMs: 30_000 },
    );
  } catch (err) {
    await detach();
    throw new Error(`nbdfuse did not start for ${uri}: ${stderr}`, { cause: err });
  }
  return { file, mountDir, pid: child.pid!, detach };
}

/** Whether something is mounted on `dir` (findmnt exits 1 when not). */
export async function isMounted(dir: string): Promise<boolean> {
  const result = await run("findmnt", ["-n", dir], { timeoutMs: 10_000 });
  return result.code === 0 && result.stdout.trim() !== "";
}

export interface LoopDevice {
  device: string;
  /** `losetup -d`, then waits until the kernel has released the backing file. Idempotent. */
  detach(): Promise<void>;
}

export async function attachLoop(file: string): Promise<LoopDevice> {
  const device = (await runOk("losetup", ["-f", "--show", file], { timeoutMs: 30_000 })).trim();
  let detached = false;
  return {
    device,
    detach: async () => {
      if (detached) return;
      detached = true;
      await runOk("losetup", ["-d", device], { timeoutMs: 30_000 });
      // Detaching can complete asynchronously; the file must be free before nbdfuse goes away.
      await waitFor("loop device release", async () => {
        const users = await runOk("losetup", ["-j", file], { timeoutMs: 10_000 });
        return users.trim() === "" ? true : undefined;
      });
    },
  };
}

export interface Mount {
  dir: string;
  unmount(): Promise<void>;
}

export async function mountExt4(device: string, dir: string): Promise<Mount> {
  await mkdir(dir, { recursive: true });
  await runOk("mount", ["-t", "ext4", device, dir], { timeoutMs: 60_000 });
  let mounted = true;
  return {
    dir,
    unmount: async () => {
      if (!mounted) return;
      await runOk("umount", [dir], { timeoutMs: 120_000 });
      mounted = false;
    },
  };
}

export interface Ext4OnExport {
  /** The export as a file (nbdfuse's): mkfs.ext4 and e2fsck run on it. */
  file: string;
  /**
   * Unmounts and detaches the loop device, in order; nbdfuse keeps serving (for e2fsck). `crashed`:
   * the server died, so the filesystem cannot write back and is unmounted lazily.
   */
  release(options?: { crashed?: boolean }): Promise<void>;
  /** Unmounts nbdfuse so it exits. */
  detachFuse(): Promise<void>;
}

/** nbdfuse -> loop -> (mkfs.ext4) -> mount of the export at `uri`, each undo registered on `cleanup` as it is made. */
export async function attachExt4(
  cleanup: CleanupStack,
  uri: string,
  { fuseDir, mountDir, format }: { fuseDir: string; mountDir: string; format: boolean },
): Promise<Ext4OnExport> {
  const fuse = await attachNbdFuse(fuseDir, uri);
  const detachFuse = cleanup.push("nbdfuse", () => fuse.detach());
  if (format) await runOk("mkfs.ext4", ["-q", "-F", fuse.file], { timeoutMs: 120_000 });
  const loop = await attachLoop(fuse.file);
  const detachLoop = cleanup.push(`loop ${loop.device}`, () => loop.detach());
  const mount = await mountExt4(loop.device, mountDir);
  const unmount = cleanup.push(`mount ${mountDir}`, () => mount.unmount());
  return {
    file: fuse.file,
    release: async ({ crashed = false } = {}) => {
      if (crashed) {
        await run("umount", ["-l", mountDir], { timeoutMs: 60_000 });
        await unmount().catch(() => undefined);
      } else {
        await unmount();
      }
      await detachLoop();
    },
    detachFuse,
  };
}
