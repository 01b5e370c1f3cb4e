/**
 * A real Runtime for tests: a fresh PGlite folder or PostgreSQL database (see @stratus/db/testing), a
 * directory bucket in a temp dir, the shared test Redis under a unique key prefix (removed by dispose),
 * a random master key, a low scrypt cost, and a logger that keeps every line for the secret greps.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createTestDatabase, type TestDatabase } from "@stratus/db/testing";
import type { DatabaseKind } from "@stratus/db";
import { DirectoryObjectStore, masterKeyId } from "@stratus/storage";
import { Redis } from "ioredis";
import type { Runtime, VerbLogger } from "../context";
import { JobQueues } from "../jobs/queues";
import { redisConnection } from "../runtime";

export const TEST_REDIS_URL = "redis://127.0.0.1:6379";

export interface TestRuntime {
  runtime: Runtime;
  dataDir: string;
  fixture: TestDatabase;
  /** Every log line written through runtime.logger, as JSON text. */
  logs: string[];
  /** Every key and value under the runtime's Redis prefix, as text. */
  dumpRedis(): Promise<string[]>;
  dispose(): Promise<void>;
}

export function capturingLogger(lines: string[]): VerbLogger {
  const write = (level: string) => (object: object, message: string) => {
    lines.push(
      JSON.stringify({ level, ...object, msg: message }, (_key, value: unknown) =>
        value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value,
      ),
    );
  };
  return { info: write("info"), warn: write("warn"), error: write("error") };
}

export async function openTestRuntime(kind: DatabaseKind, options: { embedded?: boolean } = {}): Promise<TestRuntime> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "stratus-control-test-"));
  const fixture = await createTestDatabase(kind);
  const database = await fixture.open();
  const prefix = `stratus-test-${randomBytes(6).toString("hex")}`;
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  const queues = new JobQueues({ connection: redisConnection(TEST_REDIS_URL), prefix });
  const key = randomBytes(32);
  const logs: string[] = [];
  const runtime: Runtime = {
    database,
    store: new DirectoryObjectStore(path.join(dataDir, "bucket")),
    queues,
    masterKey: { key, id: masterKeyId(key) },
    redis,
    config: { prefix, gcGraceMs: 0, nbd: { host: "127.0.0.1", port: 10809, tls: false }, kdf: { N: 1024 }, embedded: options.embedded ?? false },
    logger: capturingLogger(logs),
  };
  const dumpRedis = async () => {
    const out: string[] = [];
    for (const name of await redis.keys(`${prefix}:*`)) {
      out.push(name);
      const type = await redis.type(name);
      if (type === "string") out.push((await redis.get(name)) ?? "");
      else if (type === "hash") out.push(JSON.stringify(await redis.hgetall(name)));
      else if (type === "list") out.push(JSON.stringify(await redis.lrange(name, 0, -1)));
      else if (type === "zset") out.push(JSON.stringify(await redis.zrange(name, "0", "-1")));
      else if (type === "set") out.push(JSON.stringify(await redis.smembers(name)));
    }
    return out;
  };
  return {
    runtime,
    dataDir,
    fixture,
    logs,
    dumpRedis,
    dispose: async () => {
      await queues.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await fixture.dispose();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
