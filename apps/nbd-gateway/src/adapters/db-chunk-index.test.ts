/**
 * The Postgres chunk index under a commit whose answer is lost: the transaction commits, then the
 * caller sees an error (the connection dropped after COMMIT). The engine recognises its own landed
 * commit — in the same run and after a crash — with no conflict reported; a commit another holder
 * landed is never taken for its own, even one naming the very same generations.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { acquireLease, commitChunkMap, ensureLocalAdmin, insertVolume, loadChunkMap, type Database, type VolumeRow } from "@stratus/db";
import { createTestDatabase, type TestDatabase } from "@stratus/db/testing";
import { MemoryObjectStore, StorageError, Volume, type ChunkCommit, type ChunkIndex, type ChunkIndexSnapshot } from "@stratus/storage";
import { ManualClock } from "@stratus/storage/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../testing/nbd-tools";
import { DbChunkIndex } from "./db-chunk-index";

const MiB = 2 ** 20;
const holder = (name: string) => ({ gatewayId: `gw-${name}`, gatewayRun: "run", deviceCredentialId: null, holderName: name, clientAddress: null });

/** The real index behind a connection that drops: answers of commits, and loads meanwhile. */
class DroppingIndex implements ChunkIndex {
  loseAnswers = 0;
  /** Commits the caller gives up on before they reach the database (kept in `unsent`). */
  timeOut = 0;
  failLoads = 0;
  readonly unsent: ChunkCommit[] = [];

  constructor(readonly real: DbChunkIndex) {}

  load(): Promise<ChunkIndexSnapshot> {
    if (this.failLoads > 0) {
      this.failLoads--;
      return Promise.reject(new StorageError("EIO", "loading the chunk map failed: Connection terminated unexpectedly"));
    }
    return this.real.load();
  }

  async commit(commit: ChunkCommit): Promise<void> {
    if (this.timeOut > 0) {
      this.timeOut--;
      this.unsent.push(commit);
      throw new StorageError("EIO", "commit failed: query read timeout");
    }
    await this.real.commit(commit);
    if (this.loseAnswers > 0) {
      this.loseAnswers--;
      throw new StorageError("EIO", "commit failed: Connection terminated unexpectedly");
    }
  }
}

describe("DbChunkIndex: a commit whose answer was lost", () => {
  let fixture: TestDatabase;
  let database: Database;
  let ownerId: string;
  let root: string;
  const store = new MemoryObjectStore();

  beforeAll(async () => {
    fixture = await createTestDatabase("postgres");
    database = await fixture.open();
    ownerId = (await ensureLocalAdmin(database.db)).id;
    root = mkdtempSync(path.join(tmpdir(), "stratus-dbindex-"));
  });
  afterAll(async () => {
    await fixture?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  async function leasedVolume(): Promise<{ row: VolumeRow; token: number; cacheDir: string }> {
    const row = await insertVolume(database.db, {
      ownerId,
      name: `lostack-${randomBytes(4).toString("hex")}`,
      sizeBytes: 8 * MiB,
      chunkSize: MiB,
      durability: "local",
    });
    const attempt = await acquireLease(database.db, { volumeId: row.id, holder: holder("ours"), ttlMs: 30_000, now: new Date() });
    if (attempt.kind !== "acquired") throw new Error("lease not acquired");
    return { row, token: attempt.lease.fencingToken, cacheDir: mkdtempSync(path.join(root, "cache-")) };
  }

  function open(row: VolumeRow, cacheDir: string, index: ChunkIndex, salt: number): Promise<Volume> {
    return Volume.open({
      volumeId: row.id,
      size: row.sizeBytes,
      chunkSize: row.chunkSize,
      store,
      index,
      cacheDir,
      durability: "local",
      commitIntervalMs: 3_600_000,
      writeBehind: false,
      generationSalt: salt,
      clock: new ManualClock(), // the background retry after a failed commit waits for it: never here
    });
  }

  it("is adopted in the same run and found clean after a crash, with no conflict reported", async () => {
    const { row, token, cacheDir } = await leasedVolume();
    let conflicts = 0;
    const index = new DroppingIndex(new DbChunkIndex(database.db, row.id, token, () => conflicts++));
    const volume = await open(row, cacheDir, index, token);
    await volume.write(0, randomBytes(2 * MiB));
    index.loseAnswers = 1;
    index.failLoads = 1;
    await expect(volume.commit()).rejects.toThrow(/Connection terminated/);
    expect((await loadChunkMap(database.db, row.id)).epoch).toBe(1); // it landed

    await volume.write(3 * MiB, randomBytes(MiB));
    await volume.commit();
    const map = await loadChunkMap(database.db, row.id);
    expect(map.epoch).toBe(volume.stats().epoch);
    expect([...map.chunks.keys()].sort()).toEqual([0, 1, 3]);
    expect(conflicts).toBe(0);
    expect(volume.stats().dirtyBytes).toBe(0);

    // The same again, then a crash before any retry: the reopened cache holds the chunk clean.
    await volume.write(5 * MiB, randomBytes(MiB));
    index.loseAnswers = 1;
    index.failLoads = Infinity; // down until the crash: no retry learns the outcome
    await expect(volume.commit()).rejects.toThrow(/Connection terminated/);
    await volume.syncLocally();
    volume.abandon();
    const epoch = (await loadChunkMap(database.db, row.id)).epoch;
    const reopened = await open(row, cacheDir, new DbChunkIndex(database.db, row.id, token, () => conflicts++), token);
    expect(reopened.stats()).toMatchObject({ epoch, dirtyBytes: 0, chunksStored: 4 });
    await reopened.close();
    expect((await loadChunkMap(database.db, row.id)).epoch).toBe(epoch); // nothing committed twice
    expect(conflicts).toBe(0);
  });

  it("reports a snapshot fenced once another holder took the volume", async () => {
    const { row, token } = await leasedVolume();
    const ours = new DbChunkIndex(database.db, row.id, token);
    expect((await ours.load()).fenced).toBe(false);
    await acquireLease(database.db, { volumeId: row.id, holder: holder("other"), ttlMs: 30_000, now: new Date(), force: true });
    expect((await ours.load()).fenced).toBe(true);
    expect((await new DbChunkIndex(database.db, row.id).load()).fenced).toBeUndefined(); // no token: it cannot tell
  });

  it("never takes another holder's commit for its own, even one naming the same generations", async () => {
    const { row, token, cacheDir } = await leasedVolume();
    let conflicts = 0;
    const index = new DroppingIndex(new DbChunkIndex(database.db, row.id, token, () => conflicts++));
    const volume = await open(row, cacheDir, index, token);
    await volume.write(0, randomBytes(MiB));
    index.timeOut = 2; // ours never reaches the database: the call, and the background retry it starts
    await expect(volume.commit()).rejects.toThrow(/timeout/);
    await waitFor(() => index.unsent.length === 2, "the background retry"); // then it waits for the clock
    // Another holder takes the volume and lands a commit identical to ours (say, a replay of it).
    const other = await acquireLease(database.db, { volumeId: row.id, holder: holder("other"), ttlMs: 30_000, now: new Date(), force: true });
    if (other.kind !== "acquired") throw new Error("lease not acquired");
    const [unsent] = index.unsent;
    await commitChunkMap(database.db, { volumeId: row.id, ...unsent!, fencingToken: other.lease.fencingToken });

    await expect(volume.commit()).rejects.toThrow(/refused/);
    expect(conflicts).toBe(1); // the gateway checks whether it was fenced
    expect(volume.stats()).toMatchObject({ epoch: 0, dirtyBytes: MiB });
    volume.abandon();
  });
});
