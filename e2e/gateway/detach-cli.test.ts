/**
 * `stratus volume detach` against a real gateway that holds the volume for a client (issue 22). A
 * cooperative detach makes the gateway commit what the client wrote (acknowledged, never flushed),
 * end its connection and give the lease back; the data is there on the next attach. A force detach
 * fences the holder: the client's connection ends, its unflushed write is not in the volume, and it
 * is kept aside in the gateway's orphans folder instead.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BLOCK,
  CleanupStack,
  connectNbd,
  createVolume,
  describeLogs,
  listVolumes,
  startGateway,
  waitFor,
  type Gateway,
  type NbdSocketClient,
} from "../harness";

const cleanup = new CleanupStack();
let gateway: Gateway;

beforeAll(async () => {
  gateway = await startGateway();
  cleanup.push("stop the gateway", () => gateway.dispose());
}, 120_000);

afterAll(() => cleanup.runAll(), 60_000);

/** Resolves once the connection no longer serves (the gateway ended it or answers with an error). */
const ended = (client: NbdSocketClient) =>
  waitFor(
    "the holder's connection to end",
    () =>
      client.read(0, BLOCK).then(
        () => undefined,
        () => true,
      ),
    { timeoutMs: 20_000 },
  );

describe("stratus volume detach with a real holder", () => {
  it("cooperative detach commits and lets go; force detach fences and keeps the unflushed write aside", async () => {
    try {
      const volume = await createVolume(gateway, "held", { size: "16M", chunkSize: "1M" });
      const first = Buffer.alloc(BLOCK, 0xa1);
      const second = Buffer.alloc(BLOCK, 0xb2);

      let client = await connectNbd(gateway.nbdPort, "held");
      await client.write(0, first); // acknowledged, not flushed
      expect((await listVolumes(gateway)).find((v) => v.name === "held")).toMatchObject({ lease: { holder: "local" } });
      let started = Date.now();
      const detached = await gateway.cli(["volume", "detach", "held"]);
      const cooperativeMs = Date.now() - started;
      expect(detached.trim()).toMatch(/^detached volume held from local \(127\.0\.0\.1\) since .* UTC$/);
      await ended(client);
      client.destroy();
      expect((await listVolumes(gateway)).find((v) => v.name === "held")).toMatchObject({ lease: null });
      expect((await gateway.cli(["volume", "detach", "held"])).trim()).toBe("volume held is not attached");

      client = await connectNbd(gateway.nbdPort, "held");
      expect(await client.read(0, BLOCK)).toEqual(first);
      await client.write(0, second); // acknowledged, not flushed: the force detach must not commit it
      started = Date.now();
      const forced = await gateway.cli(["volume", "detach", "held", "--force"]);
      console.log(`stratus volume detach: cooperative ${cooperativeMs} ms, --force ${Date.now() - started} ms (CLI start included)`);
      expect(forced.trim()).toMatch(/^force detached volume held from local .*; its unflushed writes are kept aside as an orphan set, not committed$/);
      await ended(client);
      client.destroy();

      client = await connectNbd(gateway.nbdPort, "held");
      expect(await client.read(0, BLOCK)).toEqual(first);
      await client.close();
      const orphans = await waitFor("the orphan set on disk", async () => {
        const names = await readdir(path.join(gateway.dataDir, "cache", "orphans")).catch(() => [] as string[]);
        return names.find((name) => name.startsWith(volume.id));
      });
      expect(orphans).toBeDefined();
    } catch (err) {
      if (err instanceof Error) err.message += `\n--- gateway\n${describeLogs(gateway.logs())}`;
      throw err;
    }
  });
});
