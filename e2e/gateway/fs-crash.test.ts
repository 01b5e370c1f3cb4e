/**
 * Issue 3, acceptance 1 (filesystem variant): ext4 on a volume through nbdfuse and a loop device.
 * Each cycle writes a tree of files and `sync`s it, starts writing more, and kills the gateway with
 * SIGKILL. Then, as a real machine would see it: the dead mount, loop device and nbdfuse are taken
 * down, the gateway restarts, the filesystem is mounted again (the kernel replays the ext4 journal),
 * every synced tree reads back identical, and after unmounting `e2fsck -fn` finds it clean.
 *
 * FS_CRASH_CYCLES (default 5) makes a longer run. Needs root (mount, losetup) and /dev/fuse.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  attachExt4,
  CleanupStack,
  createVolume,
  describeLogs,
  killGroup,
  makeTree,
  run,
  runOk,
  seededRandom,
  startGateway,
  treeChecksums,
  type Gateway,
} from "../harness";

const CYCLES = Number(process.env.FS_CRASH_CYCLES ?? 5);
const SEED = Number(process.env.CRASH_SEED ?? 3);

const cleanup = new CleanupStack();
let gateway: Gateway;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-fscrash-"));
  cleanup.push("remove work folder", () => rm(work, { recursive: true, force: true }));
  gateway = await startGateway({ env: { STRATUS_COMMIT_INTERVAL: "1s", STRATUS_DIRTY_LIMIT: "16M" } });
  cleanup.push("stop gateway", () => gateway.dispose());
});

afterAll(() => cleanup.runAll());

const attach = (fuseDir: string, mountDir: string, { format }: { format: boolean }) => attachExt4(cleanup, gateway.uri("fs"), { fuseDir, mountDir, format });

describe("ext4 on a volume across kill -9 of the gateway", () => {
  it(
    `${CYCLES} kills: synced files read back, the journal replays and e2fsck -fn is clean`,
    async () => {
      try {
        await createVolume(gateway, "fs", { size: "256M", durability: "local" });
        const fuseDir = path.join(work, "fuse");
        const mountDir = path.join(work, "mnt");
        const random = seededRandom(SEED);
        const synced = new Map<string, string[]>();

        let fs = await attach(fuseDir, mountDir, { format: true });
        for (let cycle = 1; cycle <= CYCLES; cycle++) {
          // Durable part: a tree, then sync (FLUSH through loop -> nbdfuse -> NBD).
          const name = `tree-${cycle}`;
          await makeTree(path.join(mountDir, name), { seed: SEED * 100 + cycle, files: 150, symlinks: 10 });
          await runOk("sync", ["-f", path.join(mountDir, name)], { timeoutMs: 120_000 });
          synced.set(name, await treeChecksums(path.join(mountDir, name)));

          // In-flight part: keep writing a big file while the gateway dies under it.
          const writer = spawn("dd", ["if=/dev/urandom", `of=${path.join(mountDir, `unsynced-${cycle}`)}`, "bs=64k", "count=1024"], {
            detached: true,
            stdio: "ignore",
          });
          await new Promise((resolve) => setTimeout(resolve, 100 + Math.floor(random() * 1500)));
          await gateway.kill();
          killGroup(writer.pid, "SIGKILL");
          await fs.release({ crashed: true });
          await fs.detachFuse();

          await gateway.restart();
          fs = await attach(fuseDir, mountDir, { format: false }); // mounting replays the journal
          for (const [tree, expected] of synced) {
            expect(await treeChecksums(path.join(mountDir, tree)), `cycle ${cycle}: ${tree}`).toEqual(expected);
          }
          await fs.release({ crashed: false });
          const fsck = await run("e2fsck", ["-f", "-n", fs.file], { timeoutMs: 120_000 });
          expect(fsck.code, `cycle ${cycle}: e2fsck -fn\n${fsck.stdout}${fsck.stderr}`).toBe(0);
          await fs.detachFuse();
          fs = await attach(fuseDir, mountDir, { format: false });
          // What the dying dd left (up to 64 MiB a cycle) goes, so a long run (FS_CRASH_CYCLES) does
          // not fill the 256 MiB filesystem; the synced trees stay and are checked in every cycle.
          await rm(path.join(mountDir, `unsynced-${cycle}`), { force: true });
        }
        await fs.release({ crashed: false });
        await fs.detachFuse();
      } catch (err) {
        if (err instanceof Error) err.message += `\n${describeLogs(gateway.logs())}`;
        throw err;
      }
      // About 7 s a cycle here; a long run (FS_CRASH_CYCLES) must not hit the project's 300 s default.
    },
    CYCLES * 20_000 + 120_000,
  );
});
