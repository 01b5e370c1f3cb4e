/**
 * Acceptance 2 of issue 2: a real kernel filesystem on a Stratus volume survives a gateway restart.
 * nbdfuse exposes the export as a file, a loop device makes it a block device, the kernel's ext4 mounts
 * it (no kernel NBD client needed). Every mount, loop device and process is registered for cleanup as it is made,
 * so a failure halfway leaves nothing behind.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachExt4, CleanupStack, createVolume, describeLogs, makeTree, runOk, startGateway, treeChecksums, type Gateway } from "../harness";

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

const attachFilesystem = (fuseDir: string, mountDir: string, { format }: { format: boolean }) =>
  attachExt4(cleanup, gateway.uri("fs"), { fuseDir, mountDir, format });

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
      const fsck = await runOk("e2fsck", ["-f", "-n", second.file], { timeoutMs: 120_000 });
      expect(fsck).toMatch(/1[0-9]{3}\/\d+ files/); // the 1,000 files (plus folders, links) are counted
      await second.detachFuse();
    } catch (err) {
      if (err instanceof Error) err.message += `\n${describeLogs(gateway.logs())}`;
      throw err;
    }
  });
});
