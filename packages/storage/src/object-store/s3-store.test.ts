import { createHash, createHmac } from "node:crypto";
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

function storeFor(bucket: string, directRequests = true): S3ObjectStore {
  return new S3ObjectStore({
    endpoint: server.endpoint,
    region: server.region,
    bucket,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    directRequests,
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

// PUT and GET through the SDK client: the path of a store without explicit credentials.
describeObjectStoreSuite("s3 (s3rver), all through the S3 client", {
  supports: { byteOrderAcrossSeparators: false },
  async create() {
    const bucket = `conformance-${++bucketCount}`;
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    return storeFor(bucket, false);
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

  it("signs PUT and GET as SigV4 says, keys with any characters (checked by a verifier of its own: s3rver checks none)", async () => {
    const secret = "verify/this+secret";
    const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }> = [];
    const endpoint = http.createServer((request, response) => {
      const parts: Buffer[] = [];
      request.on("data", (part: Buffer) => parts.push(part));
      request.on("end", () => {
        seen.push({ method: request.method!, url: request.url!, headers: request.headers, body: Buffer.concat(parts) });
        if (request.method === "GET") response.writeHead(206, { "Content-Length": "3", "Content-Range": "bytes 2-4/10" }).end("abc");
        else response.writeHead(200, { ETag: '"0"' }).end();
      });
    });
    await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
    const port = (endpoint.address() as AddressInfo).port;
    const store = new S3ObjectStore({
      endpoint: `http://127.0.0.1:${port}`,
      bucket: "b",
      region: "eu-west-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "AKID", secretAccessKey: secret },
    });
    try {
      const key = "vol/x/c/00ff/12 + é~(1)*!";
      await store.put(key, Buffer.from("payload"));
      expect(String(await store.get(key, { offset: 2, length: 3 }))).toBe("abc");
      expect(seen).toHaveLength(2);
      for (const request of seen) {
        expect(decodeURIComponent(request.url)).toBe(`/b/${key}`);
        expect(verifySigV4(request, "AKID", secret, "eu-west-1")).toBe(true);
      }
      expect(seen[0]!.body.toString()).toBe("payload");
      expect(seen[0]!.headers["x-amz-content-sha256"]).toBe(createHash("sha256").update("payload").digest("hex"));
      expect(seen[1]!.headers.range).toBe("bytes=2-4");
      // The verifier refuses what it should: another secret, a changed header.
      expect(verifySigV4(seen[0]!, "AKID", "another", "eu-west-1")).toBe(false);
      expect(verifySigV4({ ...seen[1]!, headers: { ...seen[1]!.headers, range: "bytes=0-4" } }, "AKID", secret, "eu-west-1")).toBe(false);
    } finally {
      await store.close();
      await new Promise((resolve) => endpoint.close(resolve));
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
    const store = new S3ObjectStore({
      endpoint: `http://127.0.0.1:${port}`,
      bucket: "b",
      forcePathStyle: true,
      credentials: { accessKeyId: "a", secretAccessKey: "s" },
    });
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
    const store = new S3ObjectStore({
      endpoint: `http://127.0.0.1:${port}`,
      bucket: "b",
      forcePathStyle: true,
      credentials: { accessKeyId: "a", secretAccessKey: "s" },
    });
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

/**
 * SigV4 as AWS computes it on arrival (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html):
 * the canonical URI from the decoded key, each segment encoded again by RFC 3986 (S3 does not encode twice).
 */
function verifySigV4(
  request: { method: string; url: string; headers: http.IncomingHttpHeaders },
  accessKeyId: string,
  secret: string,
  region: string,
): boolean {
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
    request.headers.authorization ?? "",
  );
  if (!match || match[1] !== accessKeyId || match[3] !== region) return false;
  const [, , day, , signedHeaders, signature] = match;
  const [rawPath, query = ""] = request.url.split("?");
  const canonicalUri = rawPath!
    .split("/")
    .map((segment) => encodeURIComponent(decodeURIComponent(segment)).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join("/");
  const names = signedHeaders!.split(";");
  if (!names.includes("host") || !names.includes("x-amz-date") || !names.includes("x-amz-content-sha256")) return false;
  const canonicalHeaders = names
    .map(
      (name) =>
        `${name}:${String(request.headers[name] ?? "")
          .trim()
          .replace(/\s+/g, " ")}\n`,
    )
    .join("");
  const payloadHash = String(request.headers["x-amz-content-sha256"]);
  const canonicalRequest = [request.method, canonicalUri, query, canonicalHeaders, signedHeaders, payloadHash].join("\n");
  const scope = `${day}/${region}/s3/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", String(request.headers["x-amz-date"]), scope, createHash("sha256").update(canonicalRequest).digest("hex")].join(
    "\n",
  );
  const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secret}`, day!), region), "s3"), "aws4_request");
  return createHmac("sha256", signingKey).update(stringToSign).digest("hex") === signature;
}
