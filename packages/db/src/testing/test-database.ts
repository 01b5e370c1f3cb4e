/**
 * Test databases of both kinds, so every suite runs the same tests on PGlite and PostgreSQL.
 * - pglite: a fresh data folder in a temp dir (initdb costs ~5 s, so make one per test file, not per test).
 * - postgres: a fresh database `stratus_test_<random>` on the local server (127.0.0.1:5432, user
 *   postgres, trust auth), created through the `postgres` maintenance database and dropped afterwards.
 * Tests then isolate themselves with inRolledBackTransaction().
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TransactionRollbackError } from "drizzle-orm";
import pg from "pg";
import { openDatabase, type Database, type DatabaseKind, type OpenDatabaseOptions, type Db } from "../client";

export const DATABASE_KINDS: readonly DatabaseKind[] = ["pglite", "postgres"];

const POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432";

export interface TestDatabase {
  options: OpenDatabaseOptions;
  /** Opens (and migrates) the test database; call close() on the result, or leave it to dispose(). */
  open(): Promise<Database>;
  /** Closes what open() opened and removes the database. */
  dispose(): Promise<void>;
}

export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  const opened: Database[] = [];
  const open = async () => {
    const database = await openDatabase(options);
    opened.push(database);
    return database;
  };
  const closeAll = () => Promise.all(opened.map((database) => database.close()));

  let options: OpenDatabaseOptions;
  if (kind === "pglite") {
    const dir = await mkdtemp(join(tmpdir(), "stratus-db-test-"));
    options = { kind, dataDir: join(dir, "db") };
    return { options, open, dispose: async () => (await closeAll(), await rm(dir, { recursive: true, force: true })) };
  }
  const name = `stratus_test_${randomBytes(6).toString("hex")}`; // hex: a safe identifier, no quoting issues
  await withMaintenanceClient((client) => client.query(`create database ${name}`));
  options = { kind, url: `${POSTGRES_SERVER}/${name}` };
  return {
    options,
    open,
    dispose: async () => {
      await closeAll();
      await withMaintenanceClient((client) => client.query(`drop database if exists ${name} with (force)`));
    },
  };
}

async function withMaintenanceClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${POSTGRES_SERVER}/postgres` });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Runs fn in a transaction that is always rolled back, so tests sharing one database never see each
 * other's rows. Query functions that open their own transaction get a savepoint inside it.
 */
export async function inRolledBackTransaction(db: Db, fn: (tx: Db) => Promise<void>): Promise<void> {
  try {
    await db.transaction(async (tx) => {
      await fn(tx);
      tx.rollback();
    });
  } catch (err) {
    if (!(err instanceof TransactionRollbackError)) throw err;
  }
}
