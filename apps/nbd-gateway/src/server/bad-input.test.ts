/**
 * Acceptance 4, bad input: malformed and truncated frames (a seeded, bounded fuzz), unknown
 * exports, requests past the end, oversize requests, a client that vanishes mid-write and one
 * that never sends its option. Each gets the spec's answer or a closed connection, and the
 * server keeps serving a well-behaved client correctly afterwards.
 */
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_EPERM,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
} from "../protocol/constants";
import { encodeInfoRequest, encodeMetaContextRequest, encodeOption } from "../protocol/handshake-frames";
import { encodeRequest } from "../protocol/transmission-frames";
import { MemoryDevice } from "../testing/memory-device";
import { MemoryExportRegistry } from "../testing/memory-export-registry";
import { runOk, seededRandom, waitFor } from "../testing/nbd-tools";
import { RawNbdClient } from "../testing/raw-nbd-client";
import { createNbdServer } from "./nbd-server";
import type { NbdServer } from "./nbd-server";

const MiB = 1024 * 1024;
const MAX_PAYLOAD = 1 * MiB;
const SIZE = 8 * MiB;
// Reproduce a failing run with FUZZ_SEED=<seed printed in the test name>.
const SEED = Number(process.env.FUZZ_SEED ?? 20261101);

describe("bad input", () => {
  let server: NbdServer;
  let registry: MemoryExportRegistry;
  let good: MemoryDevice;
  let port: number;

  beforeAll(async () => {
    good = new MemoryDevice({ size: SIZE });
    registry = new MemoryExportRegistry()
      .add("good", good)
      .add("fuzz", new MemoryDevice({ size: SIZE }))
      .add("ro", new MemoryDevice({ size: SIZE, capabilities: { readOnly: true } }));
    server = createNbdServer({ registry, logger: pino({ level: "silent" }), maxPayload: MAX_PAYLOAD, handshakeTimeoutMs: 2_000 });
    port = (await server.listen(0, "127.0.0.1")).port;
  });

  afterAll(async () => {
    await server.close();
    expect(registry.openCount).toBe(0);
  });

  it("answers bad options with the spec's errors and keeps the handshake going", async () => {
    const c = await RawNbdClient.connect(port);
    await c.greet();
    const type = async (option: number, data?: Buffer) => (await c.option(option, data)).at(-1)?.replyType;
    expect(await type(NBD_OPT_GO, encodeInfoRequest("missing", []))).toBe(NBD_REP_ERR_UNKNOWN);
    expect(await type(NBD_OPT_INFO, encodeInfoRequest("missing", []))).toBe(NBD_REP_ERR_UNKNOWN);
    expect(await type(NBD_OPT_GO, Buffer.from([0, 0, 0, 50, 1]))).toBe(NBD_REP_ERR_INVALID);
    expect(await type(999)).toBe(NBD_REP_ERR_UNSUP);
    expect(await type(NBD_OPT_STARTTLS)).toBe(NBD_REP_ERR_POLICY);
    expect(await type(NBD_OPT_LIST, Buffer.from("x"))).toBe(NBD_REP_ERR_INVALID);
    expect(await type(NBD_OPT_STRUCTURED_REPLY, Buffer.from("x"))).toBe(NBD_REP_ERR_INVALID);
    expect(await type(NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest("good", ["base:allocation"]))).toBe(NBD_REP_ERR_INVALID);
    expect(await type(NBD_OPT_STRUCTURED_REPLY)).toBe(NBD_REP_ACK);
    expect(await type(NBD_OPT_LIST_META_CONTEXT, Buffer.from([0, 0, 0, 4, 0x61]))).toBe(NBD_REP_ERR_INVALID);
    expect(await type(NBD_OPT_LIST_META_CONTEXT, encodeMetaContextRequest("good", ["nocolon"]))).toBe(NBD_REP_ERR_INVALID);
    const list = await c.option(NBD_OPT_LIST_META_CONTEXT, encodeMetaContextRequest("good", ["base:"]));
    expect(list.map((r) => r.data.subarray(4).toString())).toEqual(["base:allocation", ""]);
    // "The server MUST reply with `NBD_REP_ACK`" to ABORT, then the session ends.
    expect(await type(NBD_OPT_ABORT)).toBe(NBD_REP_ACK);
    await c.closed;
  });

  it("closes the connection for an unknown EXPORT_NAME, unknown client flags and oversize options", async () => {
    const a = await RawNbdClient.connect(port);
    await a.greet();
    a.send(encodeOption(NBD_OPT_EXPORT_NAME, Buffer.from("missing")));
    await a.closed;

    const b = await RawNbdClient.connect(port);
    await b.greet(0x80);
    await b.closed;

    const c = await RawNbdClient.connect(port);
    await c.greet();
    const header = encodeOption(NBD_OPT_GO);
    header.writeUInt32BE(64 * MiB, 12);
    c.send(header);
    await c.closed;
  });

  it("refuses requests past the end, oversize, with bad flags or unknown commands, and keeps serving", async () => {
    const c = await RawNbdClient.connect(port);
    const { size } = await c.goTo("good");
    expect(size).toBe(SIZE);
    const ask = async (type: number, flags: number, offset: number, length: number, payload?: Buffer) => {
      c.request(type, flags, 7, offset, length, payload);
      const reply = await c.readReply();
      if (!reply || reply.kind !== "simple") throw new Error("expected a simple reply");
      expect(reply.handle).toBe(7);
      return reply.error;
    };
    // "SHOULD return NBD_EINVAL if it receives a read or trim request ... beyond the size"
    expect(await ask(NBD_CMD_READ, 0, SIZE - 10, 20)).toBe(NBD_EINVAL);
    expect(await ask(NBD_CMD_TRIM, 0, SIZE, 1)).toBe(NBD_EINVAL);
    expect(await ask(NBD_CMD_BLOCK_STATUS, 0, 0, 10)).toBe(NBD_EINVAL); // no meta context selected
    // "SHOULD return NBD_ENOSPC if it receives a write request ... beyond the size of the device"
    expect(await ask(NBD_CMD_WRITE, 0, SIZE - 2, 4, Buffer.from("abcd"))).toBe(NBD_ENOSPC);
    expect(await ask(NBD_CMD_WRITE_ZEROES, 0, SIZE - 2, 4)).toBe(NBD_ENOSPC);
    expect(await ask(NBD_CMD_READ, 0, 2 ** 52, 1)).toBe(NBD_EINVAL);
    // Larger than the advertised maximum block size; the refused write's payload is discarded.
    expect(await ask(NBD_CMD_READ, 0, 0, MAX_PAYLOAD + 1)).toBe(NBD_EINVAL);
    expect(await ask(NBD_CMD_WRITE, 0, 0, MAX_PAYLOAD + 1, Buffer.alloc(MAX_PAYLOAD + 1, 0xee))).toBe(NBD_EINVAL);
    expect(await ask(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 512)).toBe(NBD_EINVAL); // DF not advertised
    expect(await ask(NBD_CMD_WRITE, NBD_CMD_FLAG_FAST_ZERO, 0, 3, Buffer.from("xyz"))).toBe(NBD_EINVAL);
    expect(await ask(NBD_CMD_READ, 0x8000, 0, 512)).toBe(NBD_EINVAL);
    expect(await ask(42, 0, 0, 0)).toBe(NBD_EINVAL);
    expect(await ask(NBD_CMD_FLUSH, 0, 4096, 0)).toBe(NBD_EINVAL);
    // The connection still works and nothing refused reached the device.
    expect(await ask(NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 100, 4, Buffer.from("good"))).toBe(0);
    c.request(NBD_CMD_READ, 0, 8, 98, 8);
    const reply = await c.readReply(8);
    expect(reply?.kind === "simple" && reply.data?.toString("latin1")).toBe("\0\0good\0\0");
    expect(good.calls.filter((call) => call.operation === "write")).toHaveLength(1);
    c.request(NBD_CMD_DISC, 0, 9, 0, 0);
    await c.closed;
  });

  it("answers a structured-reply client with error chunks, and EPERM for writes to a read-only export", async () => {
    const c = await RawNbdClient.connect(port);
    await c.goTo("good", { structured: true });
    c.request(NBD_CMD_READ, 0, 11, SIZE - 1, 2);
    const err = await c.readStructuredReply();
    expect(err?.map((ch) => ch.type)).toEqual([NBD_REPLY_TYPE_ERROR]);
    expect(err?.[0]?.payload.readUInt32BE(0)).toBe(NBD_EINVAL);
    c.request(NBD_CMD_READ, 0, 12, 100, 4);
    const ok = await c.readStructuredReply();
    expect(ok?.map((ch) => ch.type)).toEqual([NBD_REPLY_TYPE_OFFSET_DATA]);
    expect(ok?.[0]?.payload.subarray(8).toString()).toBe("good");
    c.close();

    const ro = await RawNbdClient.connect(port);
    await ro.goTo("ro");
    for (const [type, payload] of [[NBD_CMD_WRITE, Buffer.from("no")], [NBD_CMD_TRIM], [NBD_CMD_WRITE_ZEROES]] as const) {
      ro.request(type, 0, 1, 0, 2, payload);
      const reply = await ro.readReply();
      expect(reply?.kind === "simple" && reply.error).toBe(NBD_EPERM);
    }
    ro.close();
  });

  it("closes the connection on a bad request magic", async () => {
    const c = await RawNbdClient.connect(port);
    await c.goTo("good");
    const frame = encodeRequest(NBD_CMD_READ, 0, 1, 0, 512);
    frame.writeUInt32BE(0x12345678, 0);
    c.send(frame);
    await c.closed;
  });

  it("releases the export when a client vanishes mid-write, and writes nothing", async () => {
    const before = good.calls.length;
    const c = await RawNbdClient.connect(port);
    await c.goTo("good");
    const frame = encodeRequest(NBD_CMD_WRITE, 0, 1, 4096, 64 * 1024, Buffer.alloc(64 * 1024, 0x77));
    c.send(frame.subarray(0, 28 + 1000));
    await waitFor(() => registry.openByName.get("good") === 1, "the connection to open its export");
    c.close();
    await waitFor(() => registry.openByName.get("good") === 0, "the export to be released");
    expect(good.calls.slice(before).filter((call) => call.operation === "write")).toHaveLength(0);
  });

  it("drops a client that never sends its option after the handshake timeout", async () => {
    const c = await RawNbdClient.connect(port);
    await c.greet();
    await c.closed; // handshakeTimeoutMs is 2 s in this suite; the test times out if it never closes
    expect(c.isClosed).toBe(true);
  });

  it(`survives a seeded fuzz of 1,000+ malformed and truncated frames (seed ${SEED})`, async () => {
    const random = seededRandom(SEED);
    const int = (n: number) => Math.floor(random() * n);
    const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
    let frames = 0;

    const mutate = (frame: Buffer): Buffer => {
      const out = Buffer.from(frame);
      switch (int(5)) {
        case 0: // flip a byte
          if (out.length > 0) {
            const at = int(out.length);
            out[at] = out[at]! ^ (1 << int(8));
          }
          return out;
        case 1: // truncate
          return out.subarray(0, int(out.length));
        case 2: // random bytes
          return Buffer.from(Array.from({ length: 1 + int(40) }, () => int(256)));
        case 3: // overwrite a 32-bit field with an extreme value
          if (out.length >= 4) out.writeUInt32BE(pick([0, 1, 0x7fffffff, 0xffffffff, SIZE, MAX_PAYLOAD + 1]), 4 * int(out.length >> 2));
          return out;
        default: // unchanged (valid frames keep the session going deeper)
          return out;
      }
    };
    const options = (): Buffer => {
      const name = pick(["fuzz", "", "missing", "f\u00fczz", "x".repeat(5000)]);
      return pick([
        encodeOption(NBD_OPT_GO, encodeInfoRequest(name, [int(5), int(5)])),
        encodeOption(NBD_OPT_INFO, encodeInfoRequest(name, [])),
        encodeOption(NBD_OPT_LIST),
        encodeOption(NBD_OPT_STRUCTURED_REPLY),
        encodeOption(NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest(name, ["base:allocation", "base:"])),
        encodeOption(NBD_OPT_LIST_META_CONTEXT, encodeMetaContextRequest(name, [])),
        encodeOption(NBD_OPT_STARTTLS),
        encodeOption(int(20), Buffer.alloc(int(64))),
        encodeOption(NBD_OPT_EXPORT_NAME, Buffer.from(name)),
      ]);
    };
    const request = (): Buffer => {
      const type = pick([0, 1, 3, 4, 5, 6, 7, 9, 200]);
      const offset = pick([0, 512, SIZE - 512, SIZE, 2 ** 40, int(SIZE)]);
      const length = pick([0, 1, 512, 4096, MAX_PAYLOAD, MAX_PAYLOAD + 1, int(65536)]);
      const flags = pick([0, NBD_CMD_FLAG_FUA, int(0x10000)]);
      const payload = type === NBD_CMD_WRITE && length <= 65536 ? Buffer.alloc(length, int(256)) : undefined;
      return encodeRequest(type, flags, int(2 ** 32), offset, length, payload);
    };

    const session = async (n: number): Promise<void> => {
      const c = await RawNbdClient.connect(port);
      try {
        if (n % 2 === 0) {
          // Handshake fuzz: mutated options straight after the greeting.
          await c.greet(pick([1, 3, 3, 3, 0, 0xff]));
          for (let i = 0; i < 8; i++, frames++) c.send(mutate(options()));
        } else {
          // Transmission fuzz: a proper GO, then mutated requests.
          await c.goTo("fuzz", { structured: random() < 0.5 });
          for (let i = 0; i < 8; i++, frames++) c.send(mutate(request()));
        }
        // Half-close: the server finishes what it can and must close its side in bounded time.
        c.socket.end();
        await c.closed;
      } finally {
        c.close();
      }
    };
    const total = 160;
    for (let batch = 0; batch < total; batch += 16) {
      await Promise.all(Array.from({ length: 16 }, (_, i) => session(batch + i)));
    }
    expect(frames).toBeGreaterThanOrEqual(1000);
    await waitFor(() => registry.openCount === 0, "every fuzzed connection to release its export");

    // A well-behaved client on another connection still reads and writes correctly.
    const uri = `nbd://127.0.0.1:${port}/good`;
    const out = await runOk("qemu-io", [
      "-f",
      "raw",
      uri,
      "-c",
      "aio_write -P 0x42 64k 256k",
      "-c",
      "aio_flush",
      "-c",
      "read -P 0x42 64k 256k",
      "-c",
      "read -P 0 512k 64k",
    ]);
    expect(out).not.toMatch(/Pattern verification failed/);
    const check = Buffer.alloc(256 * 1024);
    good.readSync(64 * 1024, check);
    expect(check.every((b) => b === 0x42)).toBe(true);
  }, 60_000);
});
