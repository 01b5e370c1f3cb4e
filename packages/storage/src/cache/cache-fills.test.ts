/**
 * CacheFills on its own, against a host that records what lands: the hold of direct fills runs on
 * an injected clock, so the test moves time instead of waiting for it.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../testing/manual-clock";
import { seededBytes } from "../testing/seeded-random";
import { waitFor } from "../testing/wait-for";
import { CacheBudget } from "./cache-budget";
import { CacheFills, FILL_HOLD_MS, type FillHost } from "./cache-fills";
import { DirectIoBufferPool } from "./direct-io-buffers";
import { SpareFiles } from "./spare-files";

const CHUNK = 64 * 1024;
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setup(fillDelayBytes = 8 * CHUNK) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "stratus-fills-"));
  dirs.push(dir);
  mkdirSync(path.join(dir, "spare"));
  const landed: Array<{ index: number; bytes: Buffer; cold: boolean }> = [];
  const placed = new Map<number, string>();
  const host: FillHost = {
    hasEntry: (index) => landed.some((fill) => fill.index === index),
    placeFill: (index, _generation, from) => {
      placed.set(index, from);
      return true;
    },
    enterFill: ({ index, cold }) => landed.push({ index, bytes: readFileSync(placed.get(index)!), cold }),
  };
  const clock = new ManualClock();
  const budget = new CacheBudget({ targetBytes: 64 * CHUNK, dirtyLimitBytes: 64 * CHUNK });
  const fills = new CacheFills({ budget, spares: new SpareFiles(path.join(dir, "spare")), host, clock, fillDelayBytes });
  return { fills, clock, landed, budget };
}

function aligned(pool: DirectIoBufferPool, seed: number): Buffer {
  const buffer = pool.acquire(CHUNK);
  seededBytes(CHUNK, seed).copy(buffer);
  return buffer;
}

describe("CacheFills", () => {
  it("writes a buffered fill at once and hands it to the host, its reservation leaving the budget", async () => {
    const { fills, landed, budget } = setup();
    const data = seededBytes(CHUNK, 1);
    expect(fills.start(2, 65_536, data)).toBe(true);
    expect(fills.filling(2)).toBe(data);
    expect(budget.cachedBytes).toBe(CHUNK);
    await fills.settled(2);
    expect(landed).toEqual([{ index: 2, bytes: data, cold: false }]);
    expect(budget.cachedBytes).toBe(0); // the host's entry counts it from here
    expect(fills.start(2, 65_536, data)).toBe(false); // the chunk has an entry now
  });

  it("holds a direct fill until no new fill came for the hold time, measured from the last one", async () => {
    const { fills, clock, landed } = setup();
    const pool = new DirectIoBufferPool();
    expect(fills.start(1, 65_536, aligned(pool, 1))).toBe(true);
    await clock.advance(FILL_HOLD_MS - 500);
    expect(fills.start(2, 65_536, aligned(pool, 2))).toBe(true); // a reader still going: the hold moves on
    await clock.advance(500);
    expect(landed).toEqual([]);
    expect(fills.filling(1)?.equals(seededBytes(CHUNK, 1))).toBe(true);
    await clock.advance(FILL_HOLD_MS - 500 - 1);
    expect(landed).toEqual([]);
    await clock.advance(1);
    await waitFor(() => landed.length === 2, "both held fills to land");
    expect(landed.map((fill) => [fill.index, fill.cold]).sort()).toEqual([
      // written in parallel: either may land first
      [1, true],
      [2, true],
    ]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("cancels held fills at close without writing them", async () => {
    const { fills, clock, landed, budget } = setup();
    expect(fills.start(1, 65_536, aligned(new DirectIoBufferPool(), 1))).toBe(true);
    fills.close();
    await fills.allSettled();
    await clock.advance(FILL_HOLD_MS);
    expect(landed).toEqual([]);
    expect(budget.cachedBytes).toBe(0);
    expect(fills.start(3, 65_536, seededBytes(CHUNK, 3))).toBe(false);
  });
});
