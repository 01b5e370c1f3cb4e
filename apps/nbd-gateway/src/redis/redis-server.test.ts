import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis, type RedisOptions } from "ioredis";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "@stratus/storage/testing";
import { openRedis } from "./redis-server";

const logger = pino({ level: "silent" });
const dirs: string[] = [];
async function tempDir(name = "stratus-redis-test-"): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), name));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function roundTrip(options: RedisOptions): Promise<string | null> {
  const client = new Redis({ ...options, lazyConnect: true });
  await client.connect();
  try {
    await client.set("stratus-test:hello", "world", "EX", 10);
    return await client.get("stratus-test:hello");
  } finally {
    client.disconnect();
  }
}

describe("the private redis-server", () => {
  it("starts on a unix socket in the data dir, answers, and stops", async () => {
    const dataDir = await tempDir();
    const redis = await openRedis({ redisUrl: undefined, dataDir }, logger);
    try {
      expect(redis.where).toBe(path.join(dataDir, "redis.sock"));
      expect((await stat(redis.where)).isSocket()).toBe(true);
      expect(await roundTrip(redis.options)).toBe("world");
    } finally {
      await redis.stop();
    }
    await expect(stat(path.join(dataDir, "redis.sock"))).rejects.toThrow();
    await expect(stat(path.join(dataDir, "redis.pid"))).rejects.toThrow();
  });

  it("starts a private redis-server that died again, says so, and tells its listeners", async () => {
    const dataDir = await tempDir();
    const lines: Array<{ msg: string; pid?: number }> = [];
    const recording = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string; pid?: number }) });
    const redis = await openRedis({ redisUrl: undefined, dataDir }, recording);
    let restarts = 0;
    redis.onRestart(() => restarts++);
    try {
      const pidOf = async () => Number((await readFile(path.join(dataDir, "redis.pid"), "utf8")).split("\n")[0]);
      const first = await pidOf();
      process.kill(first, "SIGKILL");
      await waitFor(() => restarts === 1, "the restart listener", { intervalMs: 20 });
      expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(["the private redis-server exited; restarting it", "private redis-server restarted"]));
      const second = await pidOf();
      expect(second).not.toBe(first);
      expect(await roundTrip(redis.options)).toBe("world");
    } finally {
      await redis.stop();
    }
    // A stop is not a death: nothing restarts it.
    expect(restarts).toBe(1);
    await expect(stat(path.join(dataDir, "redis.pid"))).rejects.toThrow();
  });

  it("falls back to a short socket path when the data dir's is too long for a unix socket", async () => {
    const dataDir = path.join(await tempDir(), "x".repeat(60), "y".repeat(40));
    await import("node:fs/promises").then((fs) => fs.mkdir(dataDir, { recursive: true }));
    const redis = await openRedis({ redisUrl: undefined, dataDir }, logger);
    try {
      expect(redis.where.startsWith(tmpdir())).toBe(true);
      expect(Buffer.byteLength(redis.where)).toBeLessThan(100);
      expect(((await stat(path.dirname(redis.where))).mode & 0o777).toString(8)).toBe("700");
      expect(await roundTrip(redis.options)).toBe("world");
    } finally {
      await redis.stop();
    }
    await expect(stat(path.dirname(redis.where))).rejects.toThrow();
  });

  it("says which Debian package to install when redis-server is missing", async () => {
    const dataDir = await tempDir();
    const savedPath = process.env.PATH;
    process.env.PATH = dataDir; // an empty directory: no redis-server on PATH
    try {
      await expect(openRedis({ redisUrl: undefined, dataDir }, logger)).rejects.toThrow(/Debian package redis-server/);
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it("uses REDIS_URL when given, and explains an unreachable one", async () => {
    const dataDir = await tempDir();
    const redis = await openRedis({ redisUrl: "redis://127.0.0.1:6379/0", dataDir }, logger);
    expect(await roundTrip(redis.options)).toBe("world");
    await redis.stop();
    await expect(openRedis({ redisUrl: "redis://127.0.0.1:1/0", dataDir }, logger)).rejects.toThrow(/cannot reach Redis at redis:\/\/127.0.0.1:1/);
  });
});
