import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { CreateBucketCommand, DeleteBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeObjectStoreSuite } from "../testing/object-store-suite";
import { startS3TestServer, type S3TestServer } from "../testing/s3-test-server";
import { S3ObjectStore } from "./s3-store";

let server: S3TestServer;
let admin: S3Client;
let bucketCount = 0;

beforeAll(async () => {
  server = await startS3TestServer();
  admin = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
});

afterAll(async () => {
  admin?.destroy();
  await server?.stop();
});

function storeFor(bucket: string): S3ObjectStore {
  return new S3ObjectStore({
    endpoint: server.endpoint,
    region: server.region,
    bucket,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

// A bucket per test keeps each test's listing its own.
describeObjectStoreSuite("s3 (s3rver)", {
  supports: { byteOrderAcrossSeparators: false },
  async create() {
    const bucket = `conformance-${++bucketCount}`;
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    return storeFor(bucket);
  },
});

describe("S3ObjectStore specifics", () => {
  it("wraps failures as EIO without leaking credentials", async () => {
    const store = storeFor("no-such-bucket");
    try {
      const error = await store.put("k", Buffer.from("x")).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "EIO" });
      expect(String((error as Error).message)).not.toContain(server.secretAccessKey + "/");
      await expect(store.get("k")).rejects.toMatchObject({ code: "EIO" });
    } finally {
      await store.close();
    }
  });

  it("reports an unreachable endpoint as EIO", async () => {
    const store = new S3ObjectStore({
      endpoint: "http://127.0.0.1:1",
      bucket: "b",
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });
    try {
      await expect(store.head("k")).rejects.toMatchObject({ code: "EIO" });
    } finally {
      await store.close();
    }
  });

  it("signs a precomputed payload hash instead of hashing the body again", async () => {
    // s3rver does not check payload hashes (AWS and MinIO do), so a bare HTTP server records what arrives.
    const seen: Array<{ hash: string | undefined; signed: string; body: Buffer }> = [];
    const endpoint = http.createServer((request, response) => {
      const parts: Buffer[] = [];
      request.on("data", (part: Buffer) => parts.push(part));
      request.on("end", () => {
        const hash = request.headers["x-amz-content-sha256"];
        seen.push({ hash: typeof hash === "string" ? hash : undefined, signed: request.headers.authorization ?? "", body: Buffer.concat(parts) });
        response.writeHead(200, { ETag: '"0"' }).end();
      });
    });
    await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
    const port = (endpoint.address() as AddressInfo).port;
    const store = new S3ObjectStore({ endpoint: `http://127.0.0.1:${port}`, bucket: "b", forcePathStyle: true, credentials: { accessKeyId: "a", secretAccessKey: "s" } });
    try {
      const body = Buffer.from("a sealed chunk, hashed in a codec worker");
      const sha256 = createHash("sha256").update(body).digest("hex");
      await store.put("precomputed", body, { sha256 });
      await store.put("hashed-by-the-sdk", body);
      await store.put("taken-as-given", body, { sha256: "0".repeat(64) }); // what S3 would refuse: proof it is not recomputed
      expect(seen.map((s) => s.hash)).toEqual([sha256, sha256, "0".repeat(64)]);
      for (const request of seen) {
        expect(request.body).toEqual(body);
        expect(request.signed).toMatch(/SignedHeaders=[^,]*x-amz-content-sha256/);
      }
    } finally {
      await store.close();
      await new Promise((resolve) => endpoint.close(resolve));
    }
  });

  it("receives a body into the caller's buffer, whole or ranged", async () => {
    const bucket = `receive-${++bucketCount}`;
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    const store = storeFor(bucket);
    try {
      const body = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff));
      await store.put("k", body);
      const given: Buffer[] = [];
      const allocate = (length: number) => {
        const buffer = Buffer.alloc(length);
        given.push(buffer);
        return buffer;
      };
      const whole = await store.get("k", undefined, { allocate });
      expect(whole).toBe(given[0]);
      expect(whole!.equals(body)).toBe(true);
      const part = await store.get("k", { offset: 1000, length: 70_000 }, { allocate });
      expect(part!.equals(body.subarray(1000, 71_000))).toBe(true);
      expect(await store.get("missing", undefined, { allocate })).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("refuses a body shorter than the length the server announced", async () => {
    const endpoint = http.createServer((_request, response) => {
      response.writeHead(200, { "Content-Length": "1000" });
      response.write(Buffer.alloc(400));
      setTimeout(() => response.destroy(), 20); // the connection drops mid-body
    });
    await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
    const port = (endpoint.address() as AddressInfo).port;
    const store = new S3ObjectStore({ endpoint: `http://127.0.0.1:${port}`, bucket: "b", forcePathStyle: true, credentials: { accessKeyId: "a", secretAccessKey: "s" } });
    try {
      await expect(store.get("k", undefined, { allocate: (length) => Buffer.alloc(length) })).rejects.toMatchObject({ code: "EIO" });
    } finally {
      await store.close();
      await new Promise((resolve) => endpoint.close(resolve));
    }
  });

  it("the harness's bucket exists and is empty", async () => {
    const store = storeFor(server.bucket);
    try {
      expect(await store.list({ prefix: "" })).toEqual({ objects: [], truncated: false });
    } finally {
      await store.close();
    }
    void DeleteBucketCommand;
  });
});
