/**
 * Issue 23, acceptance 1 and 2 against a real gateway, CLI, NBD clients and bucket.
 * Snapshots: an image is written and flushed, a snapshot taken while attached (local durability, so
 * the holder commits for it), the volume keeps changing; `qemu-img compare` finds the VOL@NAME export
 * equal to the image, a write to it gets EPERM, nbdinfo --map shows its holes, a snapshot of a
 * committed volume adds no object, and after GC past the grace the bucket holds exactly what the
 * volume and its snapshots name — then, the snapshots deleted, exactly what the volume names.
 * Clones: an ext4 clone mounts clean and takes writes while the parent stays byte-identical; the
 * parent and its snapshot deleted, recover --from-bucket on an empty database with no cache brings
 * back the clone and its snapshot, which read back correctly from the bucket alone.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { readSnapshotManifests, readVolumeHeader, SealedCodec, unlockDataKey, type ObjectStore } from "@stratus/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  attachExt4,
  chunkGenerations,
  CleanupStack,
  connectNbd,
  createVolume,
  listVolumes,
  makeTree,
  manifestGenerations,
  openBucket,
  run,
  runOk,
  seededBytes,
  startGateway,
  treeChecksums,
  waitFor,
  type Gateway,
  withGatewayLogs,
} from "../harness";

const MASTER_KEY = randomBytes(32);
const MiB = 2 ** 20;
const CHUNK = 64 * 1024;

const cleanup = new CleanupStack();
let gateway: Gateway;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-snapshots-"));
  cleanup.push("remove work folder", () => rm(work, { recursive: true, force: true }));
  gateway = await startGateway({
    env: { STRATUS_MASTER_KEY: MASTER_KEY.toString("base64"), STRATUS_GC_GRACE: "2s", STRATUS_COMMIT_INTERVAL: "200ms" },
  });
  cleanup.push("stop gateway", () => gateway.dispose());
}, 120_000);

afterAll(() => cleanup.runAll(), 120_000);

const uri = (exportName: string) => `nbd://127.0.0.1:${gateway.nbdPort}/${exportName}`;

const withLogs = <T>(body: () => Promise<T>): Promise<T> => withGatewayLogs(gateway, body);

/** "index/generation" of every object the volume's snapshot manifests name under its own prefix. */
async function snapshotGenerations(store: ObjectStore, volumeId: string): Promise<string[]> {
  const header = (await readVolumeHeader(store, volumeId))!;
  const dataKey = await unlockDataKey({ volumeId, slots: header.slots, masterKey: MASTER_KEY });
  const manifests = await readSnapshotManifests(store, new SealedCodec({ dataKey, compression: header.compression }), volumeId);
  const out = new Set<string>();
  for (const manifest of manifests)
    for (const [index, chunk] of manifest.chunks) if ((chunk.owner ?? volumeId) === volumeId) out.add(`${index}/${chunk.generation}`);
  return [...out].sort();
}

/** The whole export's bytes, hashed (a fresh NBD connection). */
async function exportHash(exportName: string, size: number): Promise<string> {
  const client = await connectNbd(gateway.nbdPort, exportName);
  try {
    const hash = createHash("sha256");
    for (let offset = 0; offset < size; offset += 4 * MiB) hash.update(await client.read(offset, Math.min(4 * MiB, size - offset)));
    return hash.digest("hex");
  } finally {
    await client.close();
  }
}

describe("snapshots", () => {
  it(
    "hold the flushed image while the volume changes, are read-only, add no object, and keep GC honest",
    () =>
      withLogs(async () => {
        const store = openBucket(gateway);
        const SIZE = 16 * MiB;
        const volume = await createVolume(gateway, "snapvol", { size: "16M", chunkSize: "64K", durability: "local" });
        const bytes = seededBytes(2301);
        const model = Buffer.alloc(SIZE);
        const client = await connectNbd(gateway.nbdPort, "snapvol");
        // Data in chunks 0..39 except every fifth: the snapshot must show those as holes.
        for (let chunk = 0; chunk < 40; chunk++) {
          if (chunk % 5 === 4) continue;
          const data = bytes(CHUNK);
          data.copy(model, chunk * CHUNK);
          await client.write(chunk * CHUNK, data);
        }
        await client.flush();
        const image = path.join(work, "at-snapshot.img");
        await writeFile(image, model);

        // Attached, local durability: the FLUSH did not commit; the snapshot has the holder commit first.
        const created = JSON.parse(await gateway.cli(["snapshot", "create", "snapvol", "monday", "--json"])) as { exportName: string; epoch: number };
        expect(created.exportName).toBe("snapvol@monday");

        // The volume keeps changing: overwrites, a trim, new data past the old end of the data.
        for (const chunk of [0, 1, 13]) await client.write(chunk * CHUNK + 4096, bytes(8192));
        await client.trim(2 * CHUNK, CHUNK);
        await client.write(50 * CHUNK, bytes(CHUNK));
        await client.flush();

        await runOk("qemu-img", ["compare", "-f", "raw", "-F", "raw", image, uri("snapvol@monday")], { timeoutMs: 60_000 });
        const differs = await run("qemu-img", ["compare", "-f", "raw", "-F", "raw", image, uri("snapvol")], { timeoutMs: 60_000 });
        expect(differs.code).toBe(1); // the volume itself moved on

        const map = await runOk("nbdinfo", ["--map", uri("snapvol@monday")], { timeoutMs: 30_000 });
        expect(map).toMatch(/hole/);
        expect(map).toMatch(/data/);

        const readOnly = await connectNbd(gateway.nbdPort, "snapvol@monday");
        await expect(readOnly.write(0, Buffer.alloc(4096, 1))).rejects.toMatchObject({ errno: 1 }); // NBD_EPERM
        await readOnly.close();

        // Detached, its engine commits and closes: a snapshot now adds no chunk object.
        await client.close();
        await waitFor("the volume to be detached", async () => ((await listVolumes(gateway)).find((v) => v.name === "snapvol")?.attached ? undefined : true), {
          timeoutMs: 30_000,
        });
        const before = new Set(await chunkGenerations(store, volume.id));
        await gateway.cli(["snapshot", "create", "snapvol", "tuesday"]);
        const added = (await chunkGenerations(store, volume.id)).filter((object) => !before.has(object));
        expect(added).toEqual([]);
        const listed = await gateway.cli(["snapshot", "list", "snapvol"]);
        expect(listed).toMatch(/snapvol@monday/);
        expect(listed).toMatch(/snapvol@tuesday/);

        // GC past the grace: exactly what the volume's map and its snapshots name. A reader keeps the volume
        // open, so the gateway's periodic GC of open volumes runs (a closed one is collected once, at close).
        const keepOpen = await connectNbd(gateway.nbdPort, "snapvol");
        const wanted = async () => {
          const current = (await manifestGenerations(store, volume.id, MASTER_KEY))!.chunks;
          return [...new Set([...current, ...(await snapshotGenerations(store, volume.id))])].sort();
        };
        const expectedWithSnapshots = await wanted();
        expect(expectedWithSnapshots.length).toBeGreaterThan((await manifestGenerations(store, volume.id, MASTER_KEY))!.chunks.length);
        await waitFor(
          "GC to leave exactly the objects the volume and its snapshots name",
          async () => ((await chunkGenerations(store, volume.id)).join() === (await wanted()).join() ? true : undefined),
          { timeoutMs: 60_000, intervalMs: 500 },
        );

        // Deleting both snapshots frees what only they named, after the grace.
        await gateway.cli(["snapshot", "delete", "snapvol", "monday"]);
        await gateway.cli(["snapshot", "delete", "snapvol", "tuesday"]);
        const current = (await manifestGenerations(store, volume.id, MASTER_KEY))!.chunks;
        await waitFor(
          "GC to leave exactly the volume's own map",
          async () => ((await chunkGenerations(store, volume.id)).join() === current.join() ? true : undefined),
          { timeoutMs: 60_000, intervalMs: 500 },
        );
        await keepOpen.close();
        console.log(`snapshots: ${expectedWithSnapshots.length - current.length} objects kept for snapshots, freed after their deletion`);
      }),
    240_000,
  );
});

describe("clones", () => {
  it(
    "mount clean, leave the parent unchanged, outlive the parent, and come back from the bucket",
    () =>
      withLogs(async () => {
        const SIZE = 64 * MiB;
        await createVolume(gateway, "golden", { size: "64M", chunkSize: "64K", durability: "cloud" });
        const fuseDir = path.join(work, "fuse");
        const mountDir = path.join(work, "mnt");
        const source = path.join(work, "tree");
        await makeTree(source, { seed: 23, files: 60, symlinks: 5 });
        const expected = await treeChecksums(source);

        const golden = await attachExt4(cleanup, uri("golden"), { fuseDir, mountDir, format: true });
        await runOk("cp", ["-a", source, path.join(mountDir, "tree")], { timeoutMs: 60_000 });
        await golden.release();
        await golden.detachFuse();
        await gateway.cli(["snapshot", "create", "golden", "v1"]);
        const parentBefore = await exportHash("golden", SIZE);

        const clone = JSON.parse(await gateway.cli(["volume", "clone", "golden@v1", "child", "--json"])) as { id: string; name: string };
        expect(clone.name).toBe("child");

        // The clone mounts with the parent's files, takes writes, and passes e2fsck.
        const child = await attachExt4(cleanup, uri("child"), { fuseDir, mountDir, format: false });
        expect(await treeChecksums(path.join(mountDir, "tree"))).toEqual(expected);
        await writeFile(path.join(mountDir, "only-in-child.bin"), randomBytes(3 * MiB));
        await rm(path.join(mountDir, "tree"), { recursive: true });
        await runOk("cp", ["-a", source, path.join(mountDir, "copy")], { timeoutMs: 60_000 });
        await child.release();
        const fsck = await runOk("e2fsck", ["-f", "-n", child.file], { timeoutMs: 120_000 });
        expect(fsck).toMatch(/files/);
        await child.detachFuse();

        expect(await exportHash("golden", SIZE)).toBe(parentBefore); // the parent never changed
        expect(await exportHash("golden@v1", SIZE)).toBe(parentBefore);
        const childImage = await exportHash("child", SIZE);
        expect(childImage).not.toBe(parentBefore);

        // A snapshot of the clone names the parent's objects too; then the parent (and with it its snapshot) goes.
        await gateway.cli(["snapshot", "create", "child", "c1"]);
        await gateway.cli(["volume", "delete", "golden"]);
        await waitFor("golden to be gone", async () => ((await listVolumes(gateway)).some((v) => v.name === "golden") ? undefined : true), {
          timeoutMs: 60_000,
        });

        // An empty database and no cache: recover brings back the clone and its snapshot from the bucket
        // alone, and both read back what the clone held, through objects the deleted parent left for them.
        await gateway.stop();
        await rm(path.join(gateway.dataDir, "db"), { recursive: true, force: true });
        await rm(path.join(gateway.dataDir, "cache"), { recursive: true, force: true });
        await gateway.restart();
        expect(await listVolumes(gateway)).toEqual([]);
        const recovered = JSON.parse(await gateway.cli(["volume", "recover", "--from-bucket", "--json"])) as {
          recovered: Array<{ name: string; snapshots: number }>;
        };
        expect(recovered.recovered).toEqual(expect.arrayContaining([expect.objectContaining({ name: "child", snapshots: 1 })]));
        expect(recovered.recovered.some((v) => v.name === "golden")).toBe(false); // deleted stays deleted
        expect(await exportHash("child", SIZE)).toBe(childImage);
        expect(await exportHash("child@c1", SIZE)).toBe(childImage);

        const again = await attachExt4(cleanup, uri("child"), { fuseDir, mountDir, format: false });
        expect(await treeChecksums(path.join(mountDir, "copy"))).toEqual(expected);
        await again.release();
        await again.detachFuse();
      }),
    300_000,
  );
});
