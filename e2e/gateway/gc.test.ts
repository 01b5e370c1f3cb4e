/**
 * Issue 3, acceptance 6 at the gateway level: after overwrite- and trim-heavy work and the gateway's
 * own GC jobs (short STRATUS_GC_GRACE), the bucket holds exactly the generations the newest commit
 * references (read from the bucket's manifest with the master key) plus, before the grace has
 * passed, only superseded or trimmed ones; `volume delete` leaves zero objects under the volume's
 * prefix.
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  chunkGenerations,
  connectNbd,
  createVolume,
  describeLogs,
  listObjects,
  listVolumes,
  manifestGenerations,
  openBucket,
  seededBytes,
  seededRandom,
  startGateway,
  waitFor,
  type Gateway,
} from "../harness";

const MASTER_KEY = randomBytes(32);
const CHUNK = 64 * 1024;
const SIZE = 8 * 2 ** 20;

let gateway: Gateway;

beforeAll(async () => {
  gateway = await startGateway({
    env: { STRATUS_MASTER_KEY: MASTER_KEY.toString("base64"), STRATUS_GC_GRACE: "2s", STRATUS_COMMIT_INTERVAL: "200ms" },
  });
});

afterAll(() => gateway?.dispose());

describe("garbage collection in the running gateway", () => {
  it("overwrites and trims, then GC: the bucket holds exactly the committed generations; delete leaves nothing", async () => {
    const store = openBucket(gateway);
    try {
      // durability=cloud: each FLUSH returns after its commit, so every round supersedes generations.
      const created = await createVolume(gateway, "gc", { size: "8M", chunkSize: "64K", durability: "cloud" });
      const model = Buffer.alloc(SIZE);
      const random = seededRandom(61);
      const bytes = seededBytes(61);
      const client = await connectNbd(gateway.nbdPort, "gc");

      // 40 rounds over a hot set of 16 chunks: each round overwrites some, trims a few whole chunks, commits.
      for (let round = 0; round < 40; round++) {
        for (let i = 0; i < 6; i++) {
          const offset = Math.floor(random() * 16) * CHUNK + Math.floor(random() * 15) * 4096;
          const data = bytes(4096 * (1 + Math.floor(random() * 4)));
          data.copy(model, offset);
          await client.write(offset, data);
        }
        if (round % 4 === 3) {
          const offset = Math.floor(random() * 16) * CHUNK;
          model.fill(0, offset, offset + CHUNK);
          await client.trim(offset, CHUNK);
        }
        await client.flush();
      }

      // Everything the newest commit references is there; anything else is an older generation of a chunk
      // (superseded) or a chunk no longer in the map (trimmed), waiting out its grace.
      const committed = await manifestGenerations(store, created.id, MASTER_KEY);
      expect(committed).toBeDefined();
      const current = new Map(committed!.chunks.map((entry) => entry.split("/").map(Number) as [number, number]));
      const inBucket = await chunkGenerations(store, created.id);
      expect(inBucket).toEqual(expect.arrayContaining(committed!.chunks));
      for (const entry of inBucket) {
        const [index, generation] = entry.split("/").map(Number) as [number, number];
        const live = current.get(index);
        expect(live === undefined || generation <= live, `${entry} is newer than the committed generation ${live}`).toBe(true);
      }
      const garbageBefore = inBucket.length - committed!.chunks.length;
      expect(garbageBefore).toBeGreaterThan(0); // there was something for GC to do

      // The gateway's periodic GC of open volumes removes exactly the garbage once its grace has passed.
      // (The connection stays open: the GC queued when a volume closes runs at once, while the last
      // commit's garbage is still in its grace, and nothing collects it until the volume opens again.)
      const after = await waitFor(
        "GC to leave only the committed generations",
        async () => {
          const latest = await manifestGenerations(store, created.id, MASTER_KEY);
          const objects = await chunkGenerations(store, created.id);
          return latest && objects.join() === latest.chunks.join() ? { latest, objects } : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 500 },
      );
      expect(after.objects).toEqual(after.latest.chunks);
      await client.close();

      // And the volume still reads back from the bucket alone (cache dropped).
      await gateway.stop();
      await rm(path.join(gateway.dataDir, "cache"), { recursive: true, force: true });
      await gateway.restart();
      const reader = await connectNbd(gateway.nbdPort, "gc");
      expect((await reader.read(0, SIZE)).equals(model)).toBe(true);
      await reader.close();
      console.log(`gc: ${garbageBefore} superseded/trimmed generations collected, ${after.objects.length} committed kept`);

      await gateway.cli(["volume", "delete", "gc"]);
      await waitFor(
        "the volume's prefix to be empty and the volume gone",
        async () => {
          const left = await listObjects(store, `vol/${created.id}/`);
          const volumes = await listVolumes(gateway);
          return left.length === 0 && !volumes.some((v) => v.id === created.id) ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
    } catch (err) {
      if (err instanceof Error) err.message += `\n${describeLogs(gateway.logs())}`;
      throw err;
    } finally {
      await store.close();
    }
  });
});
