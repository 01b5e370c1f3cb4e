/**
 * The Node.js behaviour PlainHttpClient is built on (docs/performance.md): a net.Socket created with
 * `onread: { buffer: () => memory, callback }` reads straight into the memory the function returns,
 * shared memory and views into it included, asking again for every read. If a Node.js release
 * changes that, this fails before the client corrupts or copies bodies.
 */
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { seededBytes } from "../testing/seeded-random";

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

describe("net.Socket onread", () => {
  it("reads each piece into the view of caller memory the buffer function returns", async () => {
    const payload = seededBytes(3 * 1024 * 1024 + 77, 5);
    const server = net.createServer((socket) => socket.end(payload));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const target = Buffer.from(new SharedArrayBuffer(payload.length));
    const handedOut = new Set<ArrayBufferLike>();
    const scratch = Buffer.alloc(16); // a read never gets an empty buffer: the one past the end goes here
    let received = 0;
    let calls = 0;
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({
        port: (server.address() as AddressInfo).port,
        host: "127.0.0.1",
        onread: {
          buffer: () => {
            if (received >= target.length) return scratch;
            calls++;
            const view = target.subarray(received, Math.min(received + 64 * 1024, target.length));
            handedOut.add(view.buffer);
            return view;
          },
          callback: (bytes: number) => {
            received += bytes;
            return true;
          },
        },
      });
      socket.on("error", reject);
      socket.on("end", () => resolve());
    });
    expect(received).toBe(payload.length);
    expect(target.equals(payload)).toBe(true); // every byte landed where we pointed, in order
    expect([...handedOut]).toEqual([target.buffer]);
    expect(calls).toBeGreaterThan(1); // asked again for every read, so each read can go elsewhere
  });
});
