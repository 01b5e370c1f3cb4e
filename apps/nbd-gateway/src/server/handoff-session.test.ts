/**
 * A connection told to hand its export over, as a raw client sees it: the request in flight is
 * served, requests after the handoff are answered NBD_ESHUTDOWN, the client's DISC ends the session
 * and the export is released; an idle client is disconnected at once.
 */
import type { WriteOptions } from "@stratus/storage";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NBD_CMD_DISC, NBD_CMD_READ, NBD_CMD_WRITE, NBD_ESHUTDOWN } from "../protocol/constants";
import { MemoryDevice } from "../testing/memory-device";
import { MemoryExportRegistry } from "../testing/memory-export-registry";
import { waitFor } from "../testing/nbd-tools";
import { RawNbdClient } from "../testing/raw-nbd-client";
import { createNbdServer, type NbdServer } from "./nbd-server";

const MiB = 1024 * 1024;

/** A device whose writes wait until the test opens the gate, so one stays in flight. */
class GatedDevice extends MemoryDevice {
  #open: () => void = () => {};
  #gate: Promise<void> | undefined;
  writesStarted = 0;

  close(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }

  open(): void {
    this.#gate = undefined;
    this.#open();
  }

  override async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    this.writesStarted += 1;
    await this.#gate;
    await super.write(offset, data, options);
  }
}

describe("handing an export over", () => {
  let server: NbdServer;
  let registry: MemoryExportRegistry;
  let device: GatedDevice;
  let port: number;

  beforeAll(async () => {
    device = new GatedDevice({ size: 8 * MiB });
    registry = new MemoryExportRegistry().add("held", device).add("idle", new MemoryDevice({ size: MiB }));
    server = createNbdServer({ registry, logger: pino({ level: "silent" }) });
    port = (await server.listen(0, "127.0.0.1")).port;
  });

  afterAll(async () => {
    await server.close();
    expect(registry.openCount).toBe(0);
  });

  it("serves what is in flight, answers later requests NBD_ESHUTDOWN, and ends on the client's DISC", async () => {
    const client = await RawNbdClient.connect(port);
    await client.goTo("held");
    device.close();
    client.request(NBD_CMD_WRITE, 0, 1, 0, 4096, Buffer.alloc(4096, 0xab));
    await waitFor(() => device.writesStarted === 1, "the write to be in flight");

    expect(registry.handOff("held")).toBe(1);
    client.request(NBD_CMD_READ, 0, 2, 0, 4096);
    client.request(NBD_CMD_WRITE, 0, 3, 8192, 4096, Buffer.alloc(4096, 0xcd));
    const refused = [await client.readReply(), await client.readReply()];
    expect(refused.map((reply) => reply?.kind === "simple" && [reply.handle, reply.error])).toEqual([
      [2, NBD_ESHUTDOWN],
      [3, NBD_ESHUTDOWN],
    ]);
    device.open();
    const served = await client.readReply();
    expect(served).toMatchObject({ kind: "simple", handle: 1, error: 0 });
    // The write in flight landed; the refused one did not.
    const seen = Buffer.alloc(4096);
    device.readSync(0, seen);
    expect(seen.every((byte) => byte === 0xab)).toBe(true);
    device.readSync(8192, seen);
    expect(seen.every((byte) => byte === 0)).toBe(true);

    client.request(NBD_CMD_DISC, 0, 4, 0, 0);
    expect(await client.readReply()).toBeUndefined();
    await waitFor(() => registry.openByName.get("held") === 0, "the export to be released");
  });

  it("disconnects an idle client at once", async () => {
    const client = await RawNbdClient.connect(port);
    await client.goTo("idle");
    expect(registry.handOff("idle")).toBe(1);
    expect(await client.readReply()).toBeUndefined();
    await waitFor(() => registry.openByName.get("idle") === 0, "the export to be released");
  });
});
