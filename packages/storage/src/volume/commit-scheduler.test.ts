/** The commit scheduler on its own, on a hand-moved clock: when commit points fall and what a flush does with them. */
import { describe, expect, it } from "vitest";
import { CacheBudget } from "../cache/cache-budget";
import { ManualClock } from "../testing/manual-clock";
import { CommitScheduler, FIRST_RETRY_MS } from "./commit-scheduler";

function setup(options: { intervalMs?: number; idleMs?: number; failures?: number } = {}) {
  const clock = new ManualClock();
  let dirty = 0;
  let failures = options.failures ?? 0;
  const commits: number[] = [];
  const scheduler = new CommitScheduler({
    volumeId: "vol",
    intervalMs: options.intervalMs ?? 400,
    idleMs: options.idleMs,
    clock,
    budget: new CacheBudget({ targetBytes: 1 << 20, dirtyLimitBytes: 1 << 20 }),
    logger: undefined,
    isOpen: () => true,
    dirtyChunks: () => dirty,
    commit: async () => {
      if (failures > 0) {
        failures--;
        throw new Error("store down");
      }
      commits.push(clock.now() - start);
      dirty = 0;
    },
  });
  const start = clock.now();
  const write = () => {
    dirty = 1;
    scheduler.modifying();
  };
  return { clock, scheduler, commits, write };
}

describe("CommitScheduler", () => {
  it("commits at the interval tick when the last write was flushed", async () => {
    const { clock, scheduler, commits, write } = setup();
    write();
    scheduler.flushed();
    await clock.advance(399);
    expect(commits).toEqual([]);
    await clock.advance(1);
    expect(commits).toEqual([400]);
  });

  it("with unflushed writes, leaves the commit to the next flush, or commits itself one interval later", async () => {
    const { clock, scheduler, commits, write } = setup();
    write();
    await clock.advance(400);
    expect(commits).toEqual([]);
    expect(scheduler.flushed()).toBe(true); // the flush is asked to commit
    scheduler.committing();
    expect(scheduler.flushed()).toBe(false);

    write(); // never flushed
    await clock.advance(400); // the tick at 800 is a commit point: a flush would commit
    expect(commits).toEqual([]);
    await clock.advance(399);
    expect(commits).toEqual([]);
    await clock.advance(1); // no flush came within the interval: the tick at 1200 commits
    expect(commits).toEqual([1200]);
  });

  it("with an idle rule, commits a flushed burst once nothing was written for idleMs, not before", async () => {
    const { clock, scheduler, commits, write } = setup({ intervalMs: 10_000, idleMs: 100 });
    for (let i = 0; i < 5; i++) {
      write();
      await clock.advance(60);
    }
    scheduler.flushed();
    expect(commits).toEqual([]);
    // The last write came at 240; the idle timer, re-armed at 300 because writes came since 200,
    // finds a quiet spell at 400: one to two idle periods after the last write.
    await clock.advance(99);
    expect(commits).toEqual([]);
    await clock.advance(1);
    expect(commits).toEqual([400]);
  });

  it("retries a failed commit with doubling backoff", async () => {
    const { clock, scheduler, commits, write } = setup({ failures: 2, intervalMs: 60_000 });
    write();
    scheduler.requestCommit();
    await clock.advance(0);
    expect(commits).toEqual([]);
    await clock.advance(FIRST_RETRY_MS);
    expect(commits).toEqual([]); // second attempt failed too
    await clock.advance(2 * FIRST_RETRY_MS);
    expect(commits).toEqual([3 * FIRST_RETRY_MS]);
  });

  it("stops its timers", async () => {
    const { clock, scheduler, commits, write } = setup();
    write();
    scheduler.flushed();
    scheduler.stop();
    await clock.advance(2_000);
    expect(commits).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });
});
