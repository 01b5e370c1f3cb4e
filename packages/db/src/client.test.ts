import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { executeRows, MIGRATIONS_FOLDER, openDatabase } from "./client";
import { isDbError } from "./errors";
import { LOCK_FILE_NAME, processStartTime } from "./pglite-lock";
import { users } from "./schema";
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from "./testing/test-database";
import { ensureLocalAdmin } from "./users";

const journal = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, "meta", "_journal.json"), "utf8")) as { entries: { tag: string }[] };

describe.each(DATABASE_KINDS)("openDatabase on %s", (kind) => {
  let fixture: TestDatabase;
  beforeAll(async () => {
    fixture = await createTestDatabase(kind);
  });
  afterAll(() => fixture?.dispose());

  it("applies every migration, and reopening applies none again and keeps the data", async () => {
    const first = await fixture.open();
    expect(first.kind).toBe(kind);
    const applied = await executeRows(first.db, sql`select hash from drizzle.__drizzle_migrations order by id`);
    expect(applied).toHaveLength(journal.entries.length);
    const tables = await executeRows<{ table_name: string }>(
      first.db,

      sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`,
    );
    expect(tables.map((row) => row.table_name)).toEqual([
      "activity_log",
      "api_tokens",
      "deployment_keys",
      "device_credentials",
      "invitations",
      "orphan_sets",
      "snapshot_chunks",
      "users",
      "volume_chunks",
      "volume_garbage",
      "volume_leases",
      "volume_samples",
      "volume_snapshots",
      "volumes",
    ]);
    const admin = await ensureLocalAdmin(first.db);
    await first.close();
    await first.close(); // a second close is harmless

    const second = await fixture.open();
    const again = await executeRows(second.db, sql`select hash from drizzle.__drizzle_migrations order by id`);
    expect(again).toEqual(applied);
    expect(await second.db.select().from(users)).toEqual([admin]);
    await second.close();
  });
});

describe("openDatabase on pglite: one process per data folder", () => {
  let fixture: TestDatabase;
  beforeAll(async () => {
    fixture = await createTestDatabase("pglite");
  });
  afterAll(() => fixture?.dispose());

  it("refuses a data folder another process holds, and takes over a dead process's lock", async () => {
    const options = fixture.options;
    if (options.kind !== "pglite") throw new Error("unreachable");
    const lockPath = join(options.dataDir, LOCK_FILE_NAME);

    const database = await fixture.open();
    // A second open in this process would corrupt the folder just like one in another process.
    await expect(openDatabase(options)).rejects.toSatisfy(
      (err) => isDbError(err, "DATABASE_LOCKED") && err.message.includes(options.dataDir) && err.message.includes(String(process.pid)),
    );
    await database.close();
    expect(existsSync(lockPath)).toBe(false);

    // A live process (our parent) holding the lock.
    writeFileSync(lockPath, `${process.ppid}\n`);
    await expect(openDatabase(options)).rejects.toSatisfy((err) => isDbError(err, "DATABASE_LOCKED") && err.message.includes(String(process.ppid)));

    // A process that has exited (kill -9 leaves its lock behind).
    const exited = spawnSync(process.execPath, ["-e", ""]);
    writeFileSync(lockPath, `${exited.pid}\n`);
    const reopened = await fixture.open();
    expect(readFileSync(lockPath, "utf8").split("\n")[0]).toBe(String(process.pid));
    await reopened.close();
    expect(existsSync(lockPath)).toBe(false);
  });

  it.runIf(process.platform === "linux")("takes over a lock whose holder is a zombie or whose pid was reused", async () => {
    const options = fixture.options;
    if (options.kind !== "pglite") throw new Error("unreachable");
    const lockPath = join(options.dataDir, LOCK_FILE_NAME);

    // A parent that never reaps its killed child, as some PID 1s do: the child stays a zombie.
    const parent = spawn("python3", ["-c", "import os,sys,time\npid=os.fork()\nif pid==0: os._exit(0)\nprint(pid,flush=True)\nsys.stdin.read()"], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    try {
      const zombie = Number((await once(parent.stdout!, "data"))[0].toString());
      await vi.waitFor(() => expect(readFileSync(`/proc/${zombie}/stat`, "utf8")).toMatch(/\) Z /));
      writeFileSync(lockPath, `${zombie}\n${processStartTime(zombie)}\n`);
      const overZombie = await fixture.open();
      expect(readFileSync(lockPath, "utf8").split("\n")[0]).toBe(String(process.pid));
      await overZombie.close();
    } finally {
      parent.kill("SIGKILL");
    }

    // A live process now has the pid, but it started at another time than the lock's writer.
    writeFileSync(lockPath, `${process.ppid}\n${Number(processStartTime(process.ppid)) + 1}\n`);
    const overReused = await fixture.open();
    await overReused.close();

    // The same live process with its own start time still holds the lock.
    writeFileSync(lockPath, `${process.ppid}\n${processStartTime(process.ppid)}\n`);
    await expect(openDatabase(options)).rejects.toSatisfy((err) => isDbError(err, "DATABASE_LOCKED"));
  });
});

describe("openDatabase on postgres: clear errors", () => {
  it("names host and port and the reason when PostgreSQL is unreachable, without the password", async () => {
    const err: unknown = await openDatabase({ kind: "postgres", url: "postgres://postgres:hunter2secret@127.0.0.1:5999/stratus" }).catch((e) => e);
    expect(isDbError(err, "DATABASE_UNREACHABLE")).toBe(true);
    expect((err as Error).message).toBe("cannot reach PostgreSQL at 127.0.0.1:5999/stratus: connect ECONNREFUSED 127.0.0.1:5999");
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain("hunter2secret");
  });

  it("explains a server that refuses the database", async () => {
    const err: unknown = await openDatabase({ kind: "postgres", url: "postgres://postgres:pw@127.0.0.1:5432/stratus_no_such_db" }).catch((e) => e);
    expect(isDbError(err, "DATABASE_UNREACHABLE")).toBe(true);
    expect((err as Error).message).toContain('database "stratus_no_such_db" does not exist');
  });

  it.each([
    ["not a URL", "hunter2secret is not a url"],
    ["the wrong scheme", "mysql://root:hunter2secret@127.0.0.1/db"],
  ])("refuses %s without echoing it", async (_what, url) => {
    const err: unknown = await openDatabase({ kind: "postgres", url }).catch((e) => e);
    expect(isDbError(err, "INVALID_DATABASE_URL")).toBe(true);
    expect((err as Error).message).toMatch(/postgres:\/\/user:password@host:5432\/database/);
    expect((err as Error).message).not.toContain("hunter2secret");
  });
});
