/**
 * An object store over any S3-compatible endpoint (AWS S3, MinIO, R2, B2, s3rver in tests). One
 * keep-alive agent per store, sized for the engine's parallel uploads and read-ahead; ranges always
 * explicit `bytes=a-b` (some servers get suffix ranges wrong). Failures are StorageError("EIO") with
 * the SDK error as `cause`; a missing key is `undefined`. With credentials, PUT and GET go through
 * S3Requests (why: docs/performance.md); everything else uses the S3Client.
 */
import http from "node:http";
import https from "node:https";
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { StorageError } from "../errors";
import type { ByteRange, GetOptions, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions } from "./object-store";
import { validateListLimit, validateRange } from "./object-store-helpers";
import { NeedsFallback } from "./plain-http-client";
import { S3Failure, S3Requests } from "./s3-requests";

/** S3 DeleteObjects takes at most 1000 keys per request. */
const DELETE_BATCH = 1000;

export interface S3ObjectStoreOptions {
  bucket: string;
  /** e.g. http://127.0.0.1:4568; omit for AWS itself. */
  endpoint?: string;
  region?: string;
  /** Path-style URLs (endpoint/bucket/key): needed by most non-AWS servers. */
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Sockets kept open to the endpoint (default 64: room for ~32 requests in flight twice over). */
  maxSockets?: number;
  /** Per-request timeout in milliseconds (default 60 s). */
  requestTimeoutMs?: number;
  /** PUT and GET through S3Requests when the credentials are given (default true; false: all through the S3Client). */
  directRequests?: boolean;
}

export class S3ObjectStore implements ObjectStore {
  readonly signsPayload: boolean = true;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly agents: { httpAgent: http.Agent; httpsAgent: https.Agent };
  /** PUT and GET without the SDK's middleware, when the credentials are known (see the top). */
  private readonly requests: S3Requests | undefined;

  constructor(options: S3ObjectStoreOptions) {
    this.bucket = options.bucket;
    const maxSockets = options.maxSockets ?? 64;
    this.agents = {
      httpAgent: new http.Agent({ keepAlive: true, maxSockets }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets }),
    };
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region ?? "us-east-1",
      forcePathStyle: options.forcePathStyle ?? true,
      credentials: options.credentials,
      // Checksums only where the API demands them: many S3-compatible servers reject the
      // SDK's newer default trailing checksums.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      maxAttempts: 1, // retries belong to the retry layer, which knows the volume's policy
      requestHandler: { ...this.agents, requestTimeout: options.requestTimeoutMs ?? 60_000 },
    });
    const region = options.region ?? "us-east-1";
    const forcePathStyle = options.forcePathStyle ?? true;
    // A dotted bucket name in a virtual-hosted https name would not match the certificate: the SDK knows that case.
    const direct = options.directRequests ?? true;
    if (direct && options.credentials !== undefined && (forcePathStyle || !options.bucket.includes("."))) {
      this.requests = new S3Requests({
        endpoint: new URL(options.endpoint ?? `https://s3.${region}.amazonaws.com`),
        bucket: options.bucket,
        region,
        forcePathStyle,
        credentials: options.credentials,
        agents: this.agents,
        requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
      });
    }
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    if (this.requests !== undefined) {
      try {
        await this.requests.put(key, body, options?.sha256);
      } catch (error) {
        throw wrapS3Error(error, `put ${key}`);
      } finally {
        options?.onBodyReleased?.();
      }
      return;
    }
    const command = new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length });
    if (options?.sha256 !== undefined) withPayloadHash(command, options.sha256);
    try {
      await this.client.send(command);
    } catch (error) {
      throw wrapS3Error(error, `put ${key}`);
    } finally {
      options?.onBodyReleased?.();
    }
  }

  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer | undefined> {
    if (range !== undefined) {
      validateRange(range);
      // "bytes=a-(a-1)" cannot be written: an empty range only needs to know the object exists.
      if (range.length === 0) return (await this.head(key)) === undefined ? undefined : Buffer.alloc(0);
    }
    if (this.requests !== undefined) return this.getDirect(key, range, options);
    try {
      const response = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: rangeHeader(range),
        }),
      );
      const body = await receiveBody(response.Body!, response.ContentLength, options?.allocate);
      return range === undefined ? body : sliceToRange(body, response.ContentRange, range);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      // RFC 9110 416: the range starts at or past the end; like the other stores, answer empty.
      if (httpStatus(error) === 416) return (await this.head(key)) === undefined ? undefined : Buffer.alloc(0);
      throw wrapS3Error(error, `get ${key}`);
    }
  }

  private async getDirect(key: string, range: ByteRange | undefined, options: GetOptions | undefined): Promise<Buffer | undefined> {
    if (this.requests!.usesPlainHttp) {
      try {
        const answer = await this.requests!.getInto(key, rangeHeader(range), options?.allocate ?? Buffer.allocUnsafeSlow);
        if (answer === undefined) return undefined;
        return range === undefined ? answer.body : sliceToRange(answer.body, answer.contentRange, range);
      } catch (error) {
        if (httpStatus(error) === 416) return (await this.head(key)) === undefined ? undefined : Buffer.alloc(0);
        // A server that streams bodies without a length: this GET again through node:http (and all after it).
        if (!(error instanceof NeedsFallback)) throw wrapS3Error(error, `get ${key}`);
      }
    }
    try {
      const response = await this.requests!.get(key, rangeHeader(range));
      if (response === undefined) return undefined;
      const announced = response.headers["content-length"];
      // A body refused halfway is not read on: its connection goes, instead of waiting in the agent's pool.
      const body = await receiveBody(response, announced === undefined ? undefined : Number(announced), options?.allocate).catch((error: unknown) => {
        response.destroy();
        throw error;
      });
      const contentRange = response.headers["content-range"];
      return range === undefined ? body : sliceToRange(body, typeof contentRange === "string" ? contentRange : undefined, range);
    } catch (error) {
      if (httpStatus(error) === 416) return (await this.head(key)) === undefined ? undefined : Buffer.alloc(0);
      throw wrapS3Error(error, `get ${key}`);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: response.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw wrapS3Error(error, `head ${key}`);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    keys = [...new Set(keys)];
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      let failed: string | undefined;
      try {
        const response = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        // Quiet mode lists only failures; a key that did not exist is not one.
        const errors = (response.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
        if (errors.length > 0) failed = `${errors.length} keys, first ${errors[0]!.Key}: ${errors[0]!.Code}`;
      } catch (error) {
        throw wrapS3Error(error, `delete ${batch.length} keys`);
      }
      if (failed !== undefined) throw new StorageError("EIO", `delete failed for ${failed}`);
    }
  }

  async list(options: ListOptions): Promise<ListPage> {
    const limit = validateListLimit(options.limit);
    try {
      const response = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: options.prefix,
          StartAfter: options.startAfter,
          MaxKeys: Math.min(limit, 1000),
        }),
      );
      const objects = (response.Contents ?? []).map((object) => ({ key: object.Key!, size: object.Size ?? 0 }));
      return { objects, truncated: response.IsTruncated === true };
    } catch (error) {
      throw wrapS3Error(error, `list ${options.prefix}`);
    }
  }

  async close(): Promise<void> {
    this.requests?.close();
    this.client.destroy();
    this.agents.httpAgent.destroy();
    this.agents.httpsAgent.destroy();
  }
}

/**
 * Reads a response body. With its length known and an `allocate`, the pieces go straight into that
 * buffer; otherwise the SDK collects them (one more copy, into a fresh buffer).
 */
async function receiveBody(
  stream: StreamingBody | AsyncIterable<unknown>,
  contentLength: number | undefined,
  allocate: GetOptions["allocate"],
): Promise<Buffer> {
  if (allocate === undefined || contentLength === undefined || !isAsyncIterable(stream)) {
    if (isAsyncIterable(stream) && !("transformToByteArray" in stream)) return collect(stream, contentLength);
    const bytes = await (stream as StreamingBody).transformToByteArray();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  const target = allocate(contentLength);
  let received = 0;
  for await (const piece of stream) {
    const bytes = piece as Uint8Array;
    if (received + bytes.length > contentLength) throw new StorageError("EIO", `S3 sent more than the ${contentLength} bytes it announced`);
    target.set(bytes, received);
    received += bytes.length;
  }
  if (received !== contentLength) throw new StorageError("EIO", `S3 sent ${received} of the ${contentLength} bytes it announced`);
  return target;
}

/** A response body read whole, checked against the length the server announced (if it did). */
async function collect(stream: AsyncIterable<unknown>, contentLength: number | undefined): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const piece of stream) parts.push(piece as Buffer);
  const body = Buffer.concat(parts);
  if (contentLength !== undefined && body.length !== contentLength)
    throw new StorageError("EIO", `S3 sent ${body.length} of the ${contentLength} bytes it announced`);
  return body;
}

type StreamingBody = NonNullable<GetObjectCommandOutput["Body"]>;

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function";
}

/** The Range header of a ranged GET: always explicit first and last byte (see the top). */
function rangeHeader(range: ByteRange | undefined): string | undefined {
  return range === undefined ? undefined : `bytes=${range.offset}-${range.offset + range.length - 1}`;
}

/**
 * Trims a ranged GET's body to what was asked for. A server may send more than the range
 * (s3rver answers `bytes=0-0` with the whole object) or ignore the Range header altogether
 * (200 with the full body); Content-Range, when present, says where the body starts.
 */
function sliceToRange(body: Buffer, contentRange: string | undefined, range: ByteRange): Buffer {
  const match = contentRange === undefined ? null : /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(contentRange);
  const bodyStart = match ? Number(match[1]) : 0;
  if (bodyStart === range.offset && body.length <= range.length) return body;
  const from = range.offset - bodyStart;
  if (from < 0) throw new StorageError("EIO", `S3 answered range ${contentRange} for ${range.offset}+${range.length}`);
  return body.subarray(from, from + range.length);
}

function httpStatus(error: unknown): number | undefined {
  if (error instanceof S3Failure) return error.status;
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name;
  // A missing bucket is a configuration error, not a missing object.
  if (name === "NoSuchBucket") return false;
  return name === "NoSuchKey" || name === "NotFound" || httpStatus(error) === 404;
}

/**
 * SigV4 signs the body's SHA-256. The signer takes an `x-amz-content-sha256` header that is already
 * there as that hash instead of hashing the body itself, so a hash computed off the event loop (in
 * the codec workers) saves the gateway's main thread a pass over every uploaded byte. The server
 * still checks the body against it, so a body damaged on the way is refused, not stored.
 */
function withPayloadHash(command: PutObjectCommand, sha256: string): void {
  command.middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers !== undefined) request.headers["x-amz-content-sha256"] = sha256;
      return next(args);
    },
    { step: "build", name: "stratusPayloadHash" },
  );
}

function wrapS3Error(error: unknown, what: string): StorageError {
  const name = (error as { name?: string } | undefined)?.name ?? "Error";
  const status = httpStatus(error);
  // The message names the operation and the S3 error code, never credentials or signed URLs.
  return new StorageError("EIO", `S3 ${what} failed: ${name}${status === undefined ? "" : ` (HTTP ${status})`}`, { cause: error });
}
