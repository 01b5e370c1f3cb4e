/**
 * The NBD port of a running `stratus gateway` under abuse (issue 20 acceptance 5, the NBD part): a client
 * that sends options and never reads the replies leaves the gateway's RSS bounded while others are
 * served (the gateway stops reading it, and drops it past the options one handshake may send), and 500 connections from one address are refused past the per-address cap while the gateway
 * stays up and serves a good client after.
 */
import { readFile } from "node:fs/promises";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVolume, listExports, run, startGateway, waitFor, type Gateway } from "../harness";

const MiB = 2 ** 20;
const PER_ADDRESS = 100;
let gateway: Gateway;

beforeAll(async () => {
  gateway = await startGateway({
    env: { STRATUS_NBD_MAX_CONNECTIONS_PER_ADDRESS: String(PER_ADDRESS), STRATUS_CACHE_SIZE: "64M", STRATUS_DIRTY_LIMIT: "16M" },
  });
  await createVolume(gateway, "victim", { size: "16M" });
});

afterAll(() => gateway?.dispose());

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** A raw connection that has read the greeting and sent fixed-newstyle client flags. */
async function greeted(): Promise<net.Socket> {
  const socket = net.connect(gateway.nbdPort, "127.0.0.1");
  socket.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    const onData = (chunk: Buffer) => {
      got += chunk.length;
      if (got < 18) return;
      socket.off("data", onData);
      socket.write(Buffer.from([0, 0, 0, 3]));
      resolve();
    };
    socket.on("data", onData);
    socket.once("close", () => reject(new Error("closed before the greeting")));
  });
  return socket;
}

describe("the NBD port under abuse", () => {
  it("a client that never reads its option replies: RSS stays bounded and others are served", async () => {
    const before = await rssBytes(gateway.pid);
    const flooder = await greeted();
    flooder.pause();
    // NBD_OPT_LIST, no data: 16 bytes that each ask for a reply.
    const option = Buffer.alloc(16);
    option.write("IHAVEOPT", 0, "latin1");
    option.writeUInt32BE(3, 8);
    const batch = Buffer.concat(Array.from({ length: 4096 }, () => option));
    let sent = 0;
    let stalled = false;
    while (sent < 4_000_000 && !stalled) {
      sent += 4096;
      if (!flooder.write(batch)) {
        stalled = !(await Promise.race([
          new Promise<boolean>((resolve) => flooder.once("drain", () => resolve(true))),
          new Promise<boolean>((resolve) => setTimeout(resolve, 2_000, false)),
        ]));
      }
    }
    expect(stalled).toBe(true);
    expect(await rssBytes(gateway.pid)).toBeLessThan(before + 128 * MiB);
    expect((await listExports(`nbd://127.0.0.1:${gateway.nbdPort}`)).map((e) => e["export-name"])).toEqual(["victim"]);
    flooder.destroy();
  });

  it("refuses 500 connections from one address past the cap, stays up and serves a good client after", async () => {
    const outcomes = await Promise.all(
      Array.from({ length: 500 }, () =>
        greeted().then(
          (socket) => socket,
          () => undefined,
        ),
      ),
    );
    const served = outcomes.filter((socket): socket is net.Socket => socket !== undefined);
    // Exactly the cap, less any connection of the previous test the gateway has not yet seen close.
    expect(served.length).toBeLessThanOrEqual(PER_ADDRESS);
    expect(served.length).toBeGreaterThanOrEqual(PER_ADDRESS - 3);
    for (const socket of served) socket.destroy();
    expect(gateway.logs().some((line) => line.msg === "nbd connection cap reached, refusing connections")).toBe(true);
    // Once the server has seen them go, a real client is served again.
    const size = await waitFor(
      "nbdinfo to be served after the flood",
      async () => {
        const result = await run("nbdinfo", ["--size", `nbd://127.0.0.1:${gateway.nbdPort}/victim`], { timeoutMs: 30_000 });
        return result.code === 0 ? result.stdout.trim() : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(size).toBe(String(16 * MiB));
  });
});
