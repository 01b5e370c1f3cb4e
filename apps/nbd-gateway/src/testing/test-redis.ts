/**
 * The shared test Redis (127.0.0.1:6379) with a unique BullMQ prefix per test, and a cleanup that
 * removes every key under it, so test files never see each other's queues.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";

export const TEST_REDIS = { host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null };

export function uniqueQueuePrefix(): string {
  return `stratus-test-${randomBytes(6).toString("hex")}`;
}

/** Every key and value under the prefix (for the secret grep tests), as text. */
export async function dumpPrefix(prefix: string): Promise<string[]> {
  const client = new Redis(TEST_REDIS);
  try {
    const out: string[] = [];
    for (const key of await client.keys(`${prefix}:*`)) {
      out.push(key);
      const type = await client.type(key);
      if (type === "string") out.push((await client.get(key)) ?? "");
      else if (type === "hash") out.push(JSON.stringify(await client.hgetall(key)));
      else if (type === "list") out.push(JSON.stringify(await client.lrange(key, 0, -1)));
      else if (type === "set") out.push(JSON.stringify(await client.smembers(key)));
      else if (type === "zset") out.push(JSON.stringify(await client.zrange(key, "0", "-1")));
      else if (type === "stream") out.push(JSON.stringify(await client.xrange(key, "-", "+")));
    }
    return out;
  } finally {
    client.disconnect();
  }
}

export async function deletePrefix(prefix: string): Promise<void> {
  const client = new Redis(TEST_REDIS);
  try {
    const keys = await client.keys(`${prefix}:*`);
    if (keys.length > 0) await client.del(...keys);
  } finally {
    client.disconnect();
  }
}
