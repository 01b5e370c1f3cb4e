/**
 * Issue 3, acceptance 1 (block level): kill -9 of the gateway at seeded random moments while a
 * client writes and FLUSHes through a real NBD connection, restart, and prove that every write
 * acknowledged before a completed FLUSH reads back (a block written after the last completed flush
 * may hold its old or its new content, nothing else). Two volumes are worked at once in every
 * cycle, one with durability=local and one with durability=cloud, so both modes see every kill.
 *
 * Acceptance 2 (machine lost) rides on the same gateway: every MACHINE_LOST_EVERY-th kill also
 * takes the machine's state (the local cache and the private redis-server), so the volume is
 * reopened from the bucket and the database alone; it must equal the state at some FLUSH at or
 * after the last cloud commit (plus possibly writes sent after that FLUSH). For durability=cloud
 * that is the last completed FLUSH; for durability=local it is the last FLUSH before the cycle
 * waited for the volume's dirty bytes to reach zero (everything committed), after which it keeps
 * writing and flushing locally until the kill.
 *
 * CRASH_CYCLES (default 50), CRASH_SEED (default 3) and MACHINE_LOST_EVERY (default 10) make a longer
 * or different run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectNbd,
  CrashModel,
  createVolume,
  describeLogs,
  findVolume,
  loseMachineState,
  waitFor,
  MiB,
  readVersions,
  runFlushWorkload,
  seededRandom,
  startGateway,
  type Gateway,
  type WorkloadResult,
} from "../harness";

const CYCLES = Number(process.env.CRASH_CYCLES ?? 50);
const SEED = Number(process.env.CRASH_SEED ?? 3);
const VOLUME_SIZE = 16 * MiB;
const MACHINE_LOST_EVERY = Number(process.env.MACHINE_LOST_EVERY ?? 10);
const MODES = ["local", "cloud"] as const;

let gateway: Gateway;

beforeAll(async () => {
  gateway = await startGateway({
    // Short commit interval and small limits: commits, backpressure and uploads are all under way when the kill comes.
    env: { STRATUS_COMMIT_INTERVAL: "300ms", STRATUS_DIRTY_LIMIT: "4M", STRATUS_CACHE_SIZE: "64M" },
  });
});

afterAll(() => gateway?.dispose());

describe("kill -9 of the gateway during writes and FLUSHes", () => {
  it(
    `${CYCLES} seeded kills (durability local and cloud): every write acknowledged before a completed FLUSH reads back`,
    async () => {
      const random = seededRandom(SEED);
      const models = new Map<string, CrashModel>();
      for (const mode of MODES) {
        await createVolume(gateway, `crash-${mode}`, { size: "16M", chunkSize: "64K", durability: mode });
        models.set(mode, new CrashModel(VOLUME_SIZE));
      }
      const totals = { flushes: 0, writes: 0, diedDuringWrite: 0, diedDuringFlush: 0, diedIdle: 0, machinesLost: 0, exactFlushStates: 0 };

      for (let cycle = 1; cycle <= CYCLES; cycle++) {
        try {
          const clients = await Promise.all(MODES.map((mode) => connectNbd(gateway.nbdPort, `crash-${mode}`)));
          const machineLost = cycle % MACHINE_LOST_EVERY === 0;
          // The oldest flush state the bucket may be at after losing the machine, per mode.
          const committedFloor = new Map<string, number>();
          if (machineLost) {
            for (const [i, mode] of MODES.entries()) {
              const model = models.get(mode)!;
              let batches = 0;
              await runFlushWorkload(clients[i]!, model, { random: seededRandom(SEED * 7000 + cycle * 2 + i), until: () => batches++ >= 4 });
              if (mode === "local") {
                // Local FLUSHes are committed within the interval: wait until nothing is dirty.
                await waitFor("local volume fully committed", async () => ((await findVolume(gateway, `crash-${mode}`)).dirtyBytes === 0 ? true : undefined), {
                  timeoutMs: 60_000,
                  intervalMs: 200,
                });
                committedFloor.set(mode, model.flushes.length - 1);
              }
            }
          }
          // Seeded moment: from right after the first writes to a few seconds of flushes in.
          const killAfterMs = 20 + Math.floor(random() * random() * 2500);
          const workloads = MODES.map((mode, i) => runFlushWorkload(clients[i]!, models.get(mode)!, { random: seededRandom(SEED * 1000 + cycle * 2 + i) }));
          await new Promise((resolve) => setTimeout(resolve, killAfterMs));
          const exit = await gateway.kill();
          expect(exit.signal).toBe("SIGKILL");
          const results: WorkloadResult[] = await Promise.all(workloads);
          for (const r of results) {
            expect(r.ended).toBe("disconnected");
            totals.flushes += r.flushesCompleted;
            totals.writes += r.writesAcked;
            if (r.diedDuring === "write") totals.diedDuringWrite++;
            else if (r.diedDuring === "flush") totals.diedDuringFlush++;
            else totals.diedIdle++;
          }

          if (machineLost) {
            committedFloor.set("cloud", models.get("cloud")!.flushes.length - 1); // every completed FLUSH was a commit
            await loseMachineState(gateway.dataDir);
            totals.machinesLost++;
          }
          await gateway.restart();
          for (const mode of MODES) {
            const model = models.get(mode)!;
            const client = await connectNbd(gateway.nbdPort, `crash-${mode}`);
            const found = await readVersions(client);
            const what = `cycle ${cycle}, durability ${mode}, killed after ${killAfterMs} ms${machineLost ? ", machine lost" : ""}`;
            if (machineLost) {
              const floor = committedFloor.get(mode)!;
              const matches = model.matchingFlushes(found).filter((m) => m.index >= floor);
              expect(matches.length, `${what}: the bucket's image is no FLUSH state from flush ${floor} (of ${model.flushes.length - 1}) on`).toBeGreaterThan(
                0,
              );
              if (matches.some((m) => m.exact)) totals.exactFlushStates++;
            } else {
              const problems = model.checkAfterCrash(found);
              expect(problems, what).toEqual([]);
            }
            // What it holds now becomes the baseline for the next cycle, once a FLUSH made it durable.
            await client.flush();
            model.adopt(found);
            await client.close();
          }
        } catch (err) {
          if (err instanceof Error) err.message += `\n(cycle ${cycle}, seed ${SEED})\n${describeLogs(gateway.logs())}`;
          throw err;
        }
      }
      // The kills must have landed in the middle of things, not only between batches.
      expect(totals.flushes).toBeGreaterThan(CYCLES);
      expect(totals.diedDuringWrite + totals.diedDuringFlush).toBeGreaterThan(CYCLES / 2);
      console.log(`crash: ${CYCLES} kills, ${totals.writes} writes and ${totals.flushes} flushes acknowledged`, totals);
    },
    CYCLES * 12_000 + 60_000,
  );
});
