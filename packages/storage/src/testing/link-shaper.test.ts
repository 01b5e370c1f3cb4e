import type net from "node:net";
import { describe, expect, it } from "vitest";
import { DelayLine, LinkShaper } from "./link-shaper";
import { ManualClock } from "./manual-clock";

const MiB = 2 ** 20;

describe("LinkShaper", () => {
  it("carries bytes at its speed, one after another, lending an idle link only its burst", async () => {
    const clock = new ManualClock(0);
    const link = new LinkShaper(MiB, 64 * 1024, clock); // 1 MiB/s
    // The first 64 KiB ride on the burst; the rest of the MiB takes its time.
    expect(link.take(MiB)).toBeCloseTo(1000 - 62.5, 6);
    // Queued behind the first: it crosses after it.
    expect(link.take(MiB / 2)).toBeCloseTo(1000 - 62.5 + 500, 6);
    await clock.advance(10_000);
    // Idle for long: still no more than the burst for free.
    expect(link.take(MiB)).toBeCloseTo(1000 - 62.5, 6);
  });

  it("refuses a speed that is not positive", () => {
    expect(() => new LinkShaper(0)).toThrow(/positive/);
  });
});

describe("DelayLine", () => {
  function line(options: { latencyMs: number; link?: LinkShaper; highWaterBytes?: number }, clock: ManualClock) {
    const delivered: Array<{ at: number; text: string }> = [];
    const source = { paused: 0, resumed: 0, pause: () => (source.paused += 1), resume: () => (source.resumed += 1) };
    let endedAt: number | undefined;
    const delay = new DelayLine({
      latencyMs: options.latencyMs,
      link: options.link,
      highWaterBytes: options.highWaterBytes,
      clock,
      source: () => source as unknown as net.Socket,
      deliver: (data) => delivered.push({ at: clock.now(), text: data.toString() }),
      end: () => (endedAt = clock.now()),
    });
    return { delay, delivered, source, endedAt: () => endedAt };
  }

  it("hands pieces on after the latency, in order, and the end after them", async () => {
    const clock = new ManualClock(0);
    const { delay, delivered, endedAt } = line({ latencyMs: 25 }, clock);
    delay.push(Buffer.from("a"));
    await clock.advance(10);
    delay.push(Buffer.from("b"));
    delay.end();
    await clock.advance(14);
    expect(delivered).toEqual([]);
    await clock.advance(1);
    expect(delivered).toEqual([{ at: 25, text: "a" }]);
    await clock.advance(10);
    expect(delivered).toEqual([
      { at: 25, text: "a" },
      { at: 35, text: "b" },
    ]);
    expect(endedAt()).toBe(35);
  });

  it("adds the time the shared link takes, and keeps order when a later piece would be due sooner", async () => {
    const clock = new ManualClock(0);
    const link = new LinkShaper(1000, 0, clock); // 1000 bytes/s, no burst
    const { delay, delivered } = line({ latencyMs: 5, link }, clock);
    delay.push(Buffer.alloc(100, "x")); // 100 ms on the link
    await clock.advance(50);
    const other = line({ latencyMs: 0 }, clock); // a piece with no link cannot pass the queue ahead of it
    other.delay.push(Buffer.from("now"));
    expect(other.delivered).toEqual([{ at: 50, text: "now" }]);
    delay.push(Buffer.from("y")); // behind the 100 bytes: 101 ms after the start
    await clock.advance(55);
    expect(delivered.map((d) => d.at)).toEqual([105]);
    await clock.advance(1);
    expect(delivered.map((d) => [d.at, d.text.length])).toEqual([
      [105, 100],
      [106, 1],
    ]);
  });

  it("pauses its source above the high-water mark and resumes it once half has drained", async () => {
    const clock = new ManualClock(0);
    const { delay, source, delivered } = line({ latencyMs: 25, highWaterBytes: 10 }, clock);
    delay.push(Buffer.alloc(6));
    expect(source.paused).toBe(0);
    delay.push(Buffer.alloc(6));
    expect(source.paused).toBe(1);
    await clock.advance(25);
    expect(delivered).toHaveLength(2);
    expect(source.resumed).toBe(1);
  });

  it("passes pieces through at once with no latency and no link", () => {
    const clock = new ManualClock(0);
    const { delay, delivered, endedAt } = line({ latencyMs: 0 }, clock);
    expect(delay.direct).toBe(true);
    delay.push(Buffer.from("a"));
    delay.end();
    expect(delivered).toEqual([{ at: 0, text: "a" }]);
    expect(endedAt()).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it("drops what it holds when closed", async () => {
    const clock = new ManualClock(0);
    const { delay, delivered, endedAt } = line({ latencyMs: 25 }, clock);
    delay.push(Buffer.from("a"));
    delay.end();
    delay.close();
    await clock.advance(100);
    expect(delivered).toEqual([]);
    expect(endedAt()).toBeUndefined();
  });
});
