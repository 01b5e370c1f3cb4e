import { randomBytes } from "node:crypto";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { READ_BUFFER_SIZE, readAcceptedSocket } from "./socket-reads";

/**
 * A server whose one connection is set up by `take` (which calls readAcceptedSocket), a client
 * that sends `sent` and ends; resolves once the server saw the end, answered it, and closed.
 */
function serveOne(sent: Buffer, take: (accepted: net.Socket) => net.Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
      const socket = take(accepted);
      socket.on("end", () => socket.end());
      socket.on("close", () => server.close(() => resolve()));
    });
    server.listen(0, "127.0.0.1", () => {
      const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1", () => client.end(sent));
      client.resume();
    });
  });
}

describe("readAcceptedSocket", () => {
  it("delivers every byte through the shared read buffer, and the server still closes once the socket does", async () => {
    const sent = randomBytes(3 * 1024 * 1024 + 17);
    const received: Buffer[] = [];
    let transientReads = 0;
    let ownedReads = 0;
    await serveOne(sent, (accepted) =>
      readAcceptedSocket(accepted, (chunk, transient) => {
        if (transient) transientReads++;
        else ownedReads++;
        expect(chunk.length).toBeLessThanOrEqual(READ_BUFFER_SIZE);
        received.push(Buffer.from(chunk)); // copied: the buffer is reused for the next read
      }),
    );
    expect(Buffer.concat(received).equals(sent)).toBe(true);
    // The fast path is in use (a Node.js upgrade that breaks it falls back to 'data' events).
    expect(ownedReads).toBe(0);
    expect(transientReads).toBeGreaterThan(1);
  });

  it("pauses and resumes like any socket", async () => {
    const sent = randomBytes(1024 * 1024);
    const received: Buffer[] = [];
    await serveOne(sent, (accepted) => {
      const socket = readAcceptedSocket(accepted, (chunk) => {
        received.push(Buffer.from(chunk));
        socket.pause();
        setTimeout(() => socket.resume(), 1);
      });
      return socket;
    });
    expect(Buffer.concat(received).equals(sent)).toBe(true);
  });

  it("reads into the buffers a connection names, or cut short, and keeps every byte in order", async () => {
    const sent = randomBytes(4 * 1024 * 1024 + 5);
    const received: Buffer[] = [];
    const counts = { target: 0, short: 0, shared: 0 };
    // Cycles through: a 28-byte read, a 300 KiB target of our own, the shared buffer.
    let step = 0;
    let target: Buffer | undefined;
    await serveOne(sent, (accepted) =>
      readAcceptedSocket(
        accepted,
        (chunk, transient) => {
          expect(transient).toBe(true);
          if (chunk.length <= 28) counts.short++;
          else counts.shared++;
          received.push(Buffer.from(chunk));
        },
        {
          next: () => {
            step = (step + 1) % 3;
            if (step === 0) return 28;
            if (step === 1) return (target = Buffer.alloc(300 * 1024));
            return undefined;
          },
          onTargetRead: (bytes) => {
            counts.target++;
            received.push(Buffer.from(target!.subarray(0, bytes)));
          },
        },
      ),
    );
    expect(Buffer.concat(received).equals(sent)).toBe(true);
    expect(counts.target).toBeGreaterThan(0);
    expect(counts.short).toBeGreaterThan(0);
    expect(counts.shared).toBeGreaterThan(0);
  });
});
