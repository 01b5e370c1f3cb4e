/**
 * The one way to open the Stratus database: embedded PGlite (the default, a data folder on local disk)
 * or a PostgreSQL server. Both get the same schema, the same generated migrations (applied here, before
 * the database is handed out) and the same drizzle API, so query modules and their tests do not care
 * which one they run on.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import type { SQL } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import type pg from "pg";
import { DbError } from "./errors";
import { lockDataDir } from "./pglite-lock";
import { initPgliteDataDir, pgliteStartParams } from "./pglite-memory";
import * as schema from "./schema";

export type StratusSchema = typeof schema;

/**
 * A drizzle database over the Stratus schema, whichever driver is underneath. A transaction (`tx` in
 * `db.transaction(async (tx) => …)`) is one too, so every query function accepts either.
 */
export type Db = PgDatabase<PgQueryResultHKT, StratusSchema>;

/**
 * Rows of a raw SQL statement. `db.execute()` returns each driver's own result type (unknown through
 * Db); both drivers put the rows in `.rows`.
 */
export async function executeRows<Row extends Record<string, unknown>>(db: Db, query: SQL): Promise<Row[]> {
  const result = (await db.execute(query)) as { rows?: Row[] };
  return result.rows ?? [];
}

export type DatabaseKind = "pglite" | "postgres";

export type OpenDatabaseOptions =
  | { kind: "pglite"; dataDir: string; migrationsFolder?: string }
  | {
      kind: "postgres";
      /** The generated migrations (default: this package's drizzle folder). */
      migrationsFolder?: string;
      /** postgres://user:password@host:port/database — the password never appears in errors. */
      url: string;
      /** Most connections the pool opens (default 10). */
      maxConnections?: number;
      /** Give up connecting after this long (default 10 s), so a black-holed host fails clearly. */
      connectTimeoutMs?: number;
      /**
       * Errors of idle pooled connections (server restart, network drop). They need no action — the next
       * query reconnects or fails with its own error — but the owner may want to log them.
       */
      onBackgroundError?: (err: Error) => void;
    };

export interface Database {
  db: Db;
  kind: DatabaseKind;
  /** Closes connections (and releases the PGlite data folder). Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Resolved from this file, not the working directory: the package's generated migrations. A variable,
 * not a literal, so bundlers (Next's Turbopack) do not try to pack the folder as an asset; a bundled
 * caller passes `migrationsFolder` instead (its import.meta.url is not this file).
 */
export const MIGRATIONS_FOLDER = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "drizzle");

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  return options.kind === "pglite" ? openPglite(options.dataDir, options.migrationsFolder ?? MIGRATIONS_FOLDER) : openPostgres(options);
}

async function openPglite(dataDir: string, migrationsFolder: string): Promise<Database> {
  const lock = lockDataDir(dataDir);
  let client: PGlite | undefined;
  try {
    try {
      await initPgliteDataDir(dataDir);
      client = await PGlite.create(dataDir, { startParams: pgliteStartParams() });
    } catch (err) {
      throw new DbError("DATABASE_OPEN_FAILED", `cannot open the embedded database in ${dataDir}: ${describeError(err)}`, { cause: err });
    }
    const db = drizzlePglite({ client, schema });
    await runMigrations(() => migratePglite(db, { migrationsFolder }));
    const opened = client;
    return {
      db,
      kind: "pglite",
      close: once(async () => {
        try {
          await opened.close();
        } finally {
          lock.release();
        }
      }),
    };
  } catch (err) {
    await client?.close().catch(() => undefined); // already failing: the first error is the one to report
    lock.release();
    throw err;
  }
}

/** Any fixed number, the same in every Stratus process: serialises migrations of concurrent starts. */
const MIGRATION_ADVISORY_LOCK = 0x5747_0001;

async function openPostgres(options: Extract<OpenDatabaseOptions, { kind: "postgres" }>): Promise<Database> {
  const target = parsePostgresUrl(options.url);
  // Loaded only for a server: the embedded default never needs the driver.
  const [{ default: pgDriver }, { drizzle: drizzleNodePg }, { migrate: migrateNodePg }] = await Promise.all([
    import("pg"),
    import("drizzle-orm/node-postgres"),
    import("drizzle-orm/node-postgres/migrator"),
  ]);
  const pool = new pgDriver.Pool({
    connectionString: options.url,
    // migrate() needs a second connection while the first holds the advisory lock
    max: Math.max(2, options.maxConnections ?? 10),
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
  });
  // Without a listener an idle connection's error would crash the process.
  pool.on("error", (err) => options.onBackgroundError?.(err));
  try {
    let lockClient: pg.PoolClient;
    try {
      lockClient = await pool.connect();
    } catch (err) {
      const reason = scrub(describeError(err), target.password);
      throw new DbError("DATABASE_UNREACHABLE", `cannot reach PostgreSQL at ${target.where}: ${reason}`, { cause: err });
    }
    const db = drizzleNodePg({ client: pool, schema });
    try {
      // Several gateways starting at once would otherwise race to create the same tables.
      await lockClient.query("select pg_advisory_lock($1)", [MIGRATION_ADVISORY_LOCK]);
      await runMigrations(() => migrateNodePg(db, { migrationsFolder: options.migrationsFolder ?? MIGRATIONS_FOLDER }), target.password);
    } finally {
      await lockClient.query("select pg_advisory_unlock($1)", [MIGRATION_ADVISORY_LOCK]).catch(() => undefined);
      lockClient.release();
    }
    return { db, kind: "postgres", close: once(() => pool.end()) };
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}

interface PostgresTarget {
  /** host:port/database, for messages. */
  where: string;
  password: string;
}

/** Validates the URL's shape before pg sees it; pg's own parser accepts nonsense and fails later. */
export function parsePostgresUrl(url: string): PostgresTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The text itself is not repeated: it may hold a password.
    throw new DbError("INVALID_DATABASE_URL", "DATABASE_URL is not a URL; expected postgres://user:password@host:5432/database");
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new DbError(
      "INVALID_DATABASE_URL",
      `DATABASE_URL must start with postgres:// or postgresql://, not ${parsed.protocol}//; expected postgres://user:password@host:5432/database`,
    );
  }
  const password = decodeURIComponent(parsed.password);
  // `?host=/run/postgresql` selects a unix socket (libpq convention, honoured by pg).
  const host = parsed.hostname || parsed.searchParams.get("host") || "localhost";
  const port = parsed.port || "5432";
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  return { where: `${host}:${port}${database ? `/${database}` : ""}`, password };
}

async function runMigrations(run: () => Promise<void>, password = ""): Promise<void> {
  try {
    await run();
  } catch (err) {
    throw new DbError("MIGRATION_FAILED", `applying database migrations failed: ${scrub(describeError(err), password)}`, { cause: err });
  }
}

/**
 * A one-line reason. Node reports a refused connection to a name with several addresses as an
 * AggregateError with an empty message, so fall back to its code and its parts.
 */
function describeError(err: unknown): string {
  if (err instanceof AggregateError && !err.message) {
    const parts = err.errors.map((e: unknown) => describeError(e));
    return [...new Set(parts)].join("; ") || String((err as NodeJS.ErrnoException).code ?? "unknown error");
  }
  if (err instanceof Error) {
    const cause = err.cause instanceof Error && err.cause.message && !err.message.includes(err.cause.message) ? `: ${err.cause.message}` : "";
    return (err.message || String((err as NodeJS.ErrnoException).code ?? err.name)) + cause;
  }
  return String(err);
}

/** Belt and braces: drivers do not echo passwords, but a message must never carry one. */
function scrub(message: string, password: string): string {
  return password ? message.split(password).join("***") : message;
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}
