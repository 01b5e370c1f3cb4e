/**
 * Acceptance 2 of issue 2: a real kernel filesystem on a Stratus volume survives a gateway restart.
 * nbdfuse exposes the export as a file, a loop device makes it a block device, the kernel's ext4 mounts
 * it (MACHINE-NOTES.md). Every mount, loop device and process is registered for cleanup as it is made,
 * so a failure halfway leaves nothing behind.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  attachLoop,
  attachNbdFuse,
  CleanupStack,
  createVolume,
  describeLogs,
  makeTree,
  mountExt4,
  runOk,
  startGateway,
  treeChecksums,
  type Gateway,
} from "../harness";

const cleanup = new CleanupStack();
let gateway: Gateway;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-fs-"));
  cleanup.push("remove work folder", () => rm(work, { recursive: true, force: true }));
  gateway = await startGateway();
  cleanup.push("stop gateway", () => gateway.dispose());
});

afterAll(() => cleanup.runAll());

/**
 * nbdfuse -> loop -> mount, each undo registered; returns one function that takes it all down in
 * order (unmount, detach the loop device, then unmount nbdfuse so it exits).
 */
async function attachFilesystem(fuseDir: string, mountDir: string, { format }: { format: boolean }) {
  const fuse = await attachNbdFuse(fuseDir, gateway.uri("fs"));
  const detachFuse = cleanup.push("nbdfuse", () => fuse.detach());
  if (format) await runOk("mkfs.ext4", ["-q", "-F", fuse.file], { timeoutMs: 120_000 });
  const loop = await attachLoop(fuse.file);
  const detachLoop = cleanup.push(`loop ${loop.device}`, () => loop.detach());
  const mount = await mountExt4(loop.device, mountDir);
  const unmount = cleanup.push(`mount ${mountDir}`, () => mount.unmount());
  return {
    diskFile: fuse.file,
    /** Unmounts and detaches the loop device; nbdfuse keeps serving (for e2fsck). */
    release: async () => {
      await unmount();
      await detachLoop();
    },
    detachFuse,
  };
}

describe("a real ext4 filesystem on a volume, through nbdfuse and a loop device", () => {
  it("keeps a tree of 1,000 files and symlinks across a gateway restart, and e2fsck finds it clean", async () => {
    try {
      await createVolume(gateway, "fs", { size: "512M" });
      const source = path.join(work, "tree");
      const stats = await makeTree(source, { seed: 7, files: 1000, symlinks: 60 });
      expect(stats.files).toBe(1000);
      const expected = await treeChecksums(source);

      const fuseDir = path.join(work, "fuse");
      const mountDir = path.join(work, "mnt");

      // First life: format, copy in, compare, take it all down.
      const first = await attachFilesystem(fuseDir, mountDir, { format: true });
      await runOk("cp", ["-a", source, path.join(mountDir, "tree")], { timeoutMs: 120_000 });
      expect(await treeChecksums(path.join(mountDir, "tree"))).toEqual(expected);
      await first.release();
      await first.detachFuse();

      // The gateway stops gracefully (flushing open volumes) and comes back on the same data.
      const exit = await gateway.restart();
      expect(exit).toMatchObject({ code: 0, killed: false });

      // Second life: the filesystem is intact and its contents unchanged.
      const second = await attachFilesystem(fuseDir, mountDir, { format: false });
      expect(await treeChecksums(path.join(mountDir, "tree"))).toEqual(expected);
      await second.release();
      const fsck = await runOk("e2fsck", ["-f", "-n", second.diskFile], { timeoutMs: 120_000 });
      expect(fsck).toMatch(/1[0-9]{3}\/\d+ files/); // the 1,000 files (plus folders, links) are counted
      await second.detachFuse();
    } catch (err) {
      if (err instanceof Error) err.message += `\n${describeLogs(gateway.logs())}`;
      throw err;
    }
  });
});
