/**
 * Orphan sets through the real gateway process and CLI: writes flushed to the local cache but not yet
 * committed, then a force detach fences the holder; the set shows in `stratus orphans list`, `stratus
 * orphans export` writes a sparse raw image with exactly those writes at their offsets (read from the
 * data directory on this host, and the same bytes downloaded from the embedded web), and `stratus orphans
 * discard` deletes the folder on the gateway's disk.
 */
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNbd, createVolume, describeLogs, MiB, startGateway, waitFor, type Gateway } from "../harness";

interface OrphanSetJson {
  id: string;
  volumeName: string;
  dirtyChunks: number;
  exportable: boolean;
  gatewayId: string;
}

let gateway: Gateway;

beforeAll(async () => {
  // Commits wait long enough that the fence finds the writes uncommitted.
  gateway = await startGateway({ env: { STRATUS_COMMIT_IDLE: "10m", STRATUS_COMMIT_INTERVAL: "10m" } });
}, 120_000);
afterAll(() => gateway?.dispose(), 60_000);

async function withLogs<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof Error) err.message += `\n--- gateway\n${describeLogs(gateway.logs())}`;
    throw err;
  }
}

describe("orphan sets", () => {
  it("lists, exports and discards the writes a forced detach left uncommitted", () =>
    withLogs(async () => {
      const volume = await createVolume(gateway, "disk", { size: "16M", chunkSize: "1M" });
      const expected = Buffer.alloc(16 * MiB);
      const first = Buffer.alloc(4096, 0x5a);
      const second = Buffer.alloc(MiB + 512, 0xc3);
      first.copy(expected, 3 * MiB + 8192);
      second.copy(expected, 9 * MiB);
      const client = await connectNbd(gateway.nbdPort, "disk");
      await client.write(3 * MiB + 8192, first);
      await client.write(9 * MiB, second);
      await client.flush(); // local durability: on the gateway's disk, not committed

      await gateway.cli(["volume", "detach", "disk", "--force"]);
      client.destroy();
      const sets = await waitFor(
        "the orphan set to be listed",
        async () => {
          const listed = JSON.parse(await gateway.cli(["orphans", "list", "--json"])) as OrphanSetJson[];
          return listed.length > 0 ? listed : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      expect(sets).toHaveLength(1);
      const set = sets[0]!;
      expect(set).toMatchObject({ volumeName: "disk", dirtyChunks: 3, exportable: true });
      expect(await gateway.cli(["orphans", "list", "--volume", "disk"])).toContain(set.id);

      // On this host the CLI reads the gateway's data directory: a sparse image of the volume's size.
      const out = path.join(gateway.dataDir, "disk-orphan.img");
      expect(await gateway.cli(["orphans", "export", set.id, "--out", out])).toContain("3 uncommitted chunk(s) from this machine's data directory");
      expect((await readFile(out)).equals(expected)).toBe(true);
      expect((await stat(out)).blocks * 512).toBeLessThan(8 * MiB);

      // The embedded web serves the same bytes as a download.
      const token = (await readFile(path.join(gateway.dataDir, "cli-token"), "utf8")).trim();
      const response = await fetch(`http://127.0.0.1:${gateway.webPort}/api/v1/orphans/${set.id}/image`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(expected)).toBe(true);

      const folder = path.join(gateway.dataDir, "cache", "orphans", `${volume.id}-1`);
      expect(existsSync(folder)).toBe(true);
      await gateway.cli(["orphans", "discard", set.id]);
      await waitFor("the folder to be deleted", async () => (existsSync(folder) ? undefined : true), { timeoutMs: 10_000, intervalMs: 100 });
      expect(JSON.parse(await gateway.cli(["orphans", "list", "--json"]))).toEqual([]);
    }));
});
