import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3ObjectStore } from "../object-store/s3-store";
import { startS3TestServer, type S3TestServer } from "./s3-test-server";

let server: S3TestServer;
let store: S3ObjectStore;

beforeAll(async () => {
  server = await startS3TestServer({ bucket: "counted" });
  store = new S3ObjectStore({
    endpoint: server.endpoint,
    region: server.region,
    bucket: server.bucket,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
});

afterAll(async () => {
  await store?.close();
  await server?.stop();
});

describe("the S3 test server's request counts", () => {
  it("counts requests and body bytes by the first segment of the key", async () => {
    const before = await server.requestCounts();
    await store.put("alpha/1", Buffer.alloc(1000, 1));
    await store.put("alpha/2", Buffer.alloc(3000, 2));
    await store.put("beta/x/y", Buffer.alloc(10, 3));
    expect((await store.get("alpha/2"))?.length).toBe(3000);
    expect(await store.get("alpha/missing")).toBeUndefined();
    await store.deleteMany(["alpha/1"]);
    await store.list({ prefix: "beta/" });
    const after = await server.requestCounts();

    expect(before.alpha).toBeUndefined();
    expect(after.alpha).toMatchObject({ PUT: 2, GET: 2, DELETE: 0, bodyBytesIn: 4000 });
    expect(after.alpha!.bodyBytesOut).toBeGreaterThanOrEqual(3000); // the object, plus the 404's error body
    expect(after.beta).toMatchObject({ PUT: 1, GET: 0, bodyBytesIn: 10, bodyBytesOut: 0 });
    // A multi-object delete and a list name no key in their path: they are bucket-level.
    const bucketLevel = after["(bucket)"]!;
    const earlier = before["(bucket)"] ?? { POST: 0, GET: 0 };
    expect(bucketLevel.POST - earlier.POST).toBe(1);
    expect(bucketLevel.GET - earlier.GET).toBe(1);
  });
});
