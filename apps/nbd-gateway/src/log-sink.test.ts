import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createLogSink } from "./log-sink";

/** A real pipe (a FIFO), both ends non-blocking as libuv leaves a stdout pipe. */
function pipe(): { reader: number; writer: number; done(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "stratus-log-sink-"));
  const fifo = path.join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  return { reader, writer, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const open: Array<() => void> = [];
afterEach(() => open.splice(0).forEach((close) => close()));

describe("createLogSink", () => {
  it("drops lines once the pipe lost its reader, without throwing, and the exit flush returns", () => {
    const { reader, writer, done } = pipe();
    open.push(() => (closeSync(writer), done()));
    const sink = createLogSink({ fd: writer });
    sink.write("before\n");
    const buffer = Buffer.alloc(64);
    expect(buffer.subarray(0, readSync(reader, buffer)).toString()).toBe("before\n");
    closeSync(reader);
    sink.write("after\n");
    expect(sink.lost).toBe(true);
    sink.write("dropped\n");
    const since = Date.now();
    sink.flushSync(60_000);
    expect(Date.now() - since).toBeLessThan(1_000);
  });

  it("queues what a full pipe does not take and writes it, in order, once the reader catches up", async () => {
    const { reader, writer, done } = pipe();
    open.push(() => (closeSync(reader), closeSync(writer), done()));
    const sink = createLogSink({ fd: writer, retryMs: 1 });
    const lines = Array.from({ length: 2_000 }, (_, i) => `line ${String(i).padStart(5, "0")} ${"x".repeat(100)}\n`);
    for (const line of lines) sink.write(line); // more than a pipe's 64 KiB
    let read = "";
    const buffer = Buffer.alloc(1 << 16);
    const deadline = Date.now() + 10_000;
    while (read.length < lines.join("").length && Date.now() < deadline) {
      try {
        read += buffer.subarray(0, readSync(reader, buffer)).toString();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 1)); // the sink's retry timer runs
    }
    expect(read).toBe(lines.join(""));
    expect(sink.lost).toBe(false);
  });

  it("gives the exit flush a bounded time when the reader is alive but never reads", () => {
    const { reader, writer, done } = pipe();
    open.push(() => (closeSync(reader), closeSync(writer), done()));
    const sink = createLogSink({ fd: writer });
    for (let i = 0; i < 1_000; i++) sink.write(`${"y".repeat(199)}\n`);
    const since = Date.now();
    sink.flushSync(200);
    expect(Date.now() - since).toBeLessThan(2_000);
    expect(sink.lost).toBe(false);
  });
});
