/**
 * The fixture every db suite shares: one fresh test database of `kind` per file (created before the
 * tests, dropped after). Returns a getter, since the database exists only once beforeAll has run.
 */
import { afterAll, beforeAll } from "vitest";
import type { Database, DatabaseKind } from "../client";
import { createTestDatabase, type TestDatabase } from "./test-database";

export function useTestDatabase(kind: DatabaseKind): () => Database {
  let fixture: TestDatabase | undefined;
  let database: Database | undefined;
  beforeAll(async () => {
    fixture = await createTestDatabase(kind);
    database = await fixture.open();
  });
  afterAll(() => fixture?.dispose());
  return () => database!;
}
