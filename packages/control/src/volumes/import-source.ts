/**
 * Where an import reads its image: an http(s) URL (a presigned one too) or an S3 object with the
 * endpoint and credentials the user typed. Both are secrets: a presigned URL's query is a credential.
 * So the source never goes into a job payload, a log line or a database column: the verb seals it with
 * the deployment's master key (AES-256-GCM, the volume id as additional data) into a Redis key with a
 * TTL, `<prefix>:import-source:<volumeId>`, which the worker reads and deletes. Only `shownSource`
 * (no query, no credentials) is ever displayed.
 *
 * The same module opens the image for reading: a ranged head (the verb sizes the volume from it) or
 * the whole stream (the worker copies it).
 */
import { Readable } from "node:stream";
import type { Redis } from "ioredis";
import * as z from "zod";
import { openBox, sealBox } from "../keys/sealed-box";

export const s3SourceSchema = z.strictObject({
  /** http(s) endpoint of the S3-compatible service; absent: AWS. */
  endpoint: z
    .url({ protocol: /^https?$/ })
    .max(2000)
    .optional(),
  region: z.string().min(1).max(100).optional(),
  bucket: z.string().min(1).max(255),
  key: z.string().min(1).max(1024),
  accessKeyId: z.string().max(256).optional(),
  secretAccessKey: z.string().max(256).optional(),
});
export type S3Source = z.infer<typeof s3SourceSchema>;

export const importSourceSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("url"), url: z.url({ protocol: /^https?$/, error: "an http(s) URL" }).max(8000) }),
  z.strictObject({ kind: z.literal("s3"), s3: s3SourceSchema }),
]);
export type ImportSource = z.infer<typeof importSourceSchema>;

/** The source as it may be shown: an URL's origin and path ("?…" for a query), or s3://bucket/key. */
export function shownSource(source: ImportSource): string {
  if (source.kind === "s3") return `s3://${source.s3.bucket}/${source.s3.key}`;
  const url = new URL(source.url);
  return `${url.origin}${url.pathname}${url.search ? "?…" : ""}`;
}

const SEAL_VERSION = 1;
/** Long enough for a job to wait behind others; the worker deletes it as soon as it has read it. */
export const IMPORT_SOURCE_TTL_SECONDS = 24 * 3600;
const sourceKey = (prefix: string, volumeId: string) => `${prefix}:import-source:${volumeId}`;
const aad = (volumeId: string) => Buffer.from(`stratus import source v${SEAL_VERSION} ${volumeId}`);

export async function storeImportSource(redis: Redis, prefix: string, masterKey: Buffer, volumeId: string, source: ImportSource): Promise<void> {
  const plain = Buffer.from(JSON.stringify(source));
  try {
    await redis.set(sourceKey(prefix, volumeId), sealBox(masterKey, SEAL_VERSION, aad(volumeId), plain), "EX", IMPORT_SOURCE_TTL_SECONDS);
  } finally {
    plain.fill(0);
  }
}

/** The source, taken out of Redis (read once), or undefined when it expired or does not open. */
export async function takeImportSource(redis: Redis, prefix: string, masterKey: Buffer, volumeId: string): Promise<ImportSource | undefined> {
  const sealed = await redis.getdel(sourceKey(prefix, volumeId));
  if (!sealed) return undefined;
  const plain = openBox(masterKey, SEAL_VERSION, aad(volumeId), sealed);
  if (!plain) return undefined;
  const parsed = importSourceSchema.safeParse(JSON.parse(plain.toString()));
  plain.fill(0);
  return parsed.success ? parsed.data : undefined;
}

export async function dropImportSource(redis: Redis, prefix: string, volumeId: string): Promise<void> {
  await redis.del(sourceKey(prefix, volumeId));
}

/** A failure to read the source, in words fit to show (never the URL's query or a credential). */
export class ImportSourceError extends Error {
  override readonly name = "ImportSourceError";
}

export interface SourceHead {
  /** The image file's size in bytes. */
  totalBytes: number;
  /** Its first bytes (up to the requested count). */
  head: Buffer;
}

/** The SDK and a client for the source. The SDK loads with the first S3 import: most processes never run one. */
async function s3Client(s3: S3Source) {
  const sdk = await import("@aws-sdk/client-s3");
  const client = new sdk.S3Client({
    endpoint: s3.endpoint,
    region: s3.region ?? "us-east-1",
    forcePathStyle: s3.endpoint !== undefined,
    credentials: s3.accessKeyId && s3.secretAccessKey ? { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } : undefined,
    maxAttempts: 3,
  });
  return { sdk, client };
}

/** Size and first `count` bytes of the image. */
export async function readSourceHead(source: ImportSource, count: number, signal?: AbortSignal): Promise<SourceHead> {
  const shown = shownSource(source);
  if (source.kind === "s3") {
    const { sdk, client } = await s3Client(source.s3);
    try {
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: source.s3.bucket, Key: source.s3.key }), { abortSignal: signal });
      const totalBytes = head.ContentLength ?? 0;
      if (totalBytes === 0) return { totalBytes, head: Buffer.alloc(0) };
      const got = await client.send(new sdk.GetObjectCommand({ Bucket: source.s3.bucket, Key: source.s3.key, Range: `bytes=0-${count - 1}` }), {
        abortSignal: signal,
      });
      const bytes = Buffer.from(await got.Body!.transformToByteArray());
      return { totalBytes, head: bytes.subarray(0, count) };
    } catch (error) {
      throw new ImportSourceError(`cannot read ${shown}: ${s3Reason(error)}`, { cause: error });
    } finally {
      client.destroy();
    }
  }
  const response = await fetchOrExplain(source.url, shown, { Range: `bytes=0-${count - 1}` }, signal);
  let totalBytes: number | undefined;
  if (response.status === 206) {
    totalBytes = Number(/\/(\d+)$/.exec(response.headers.get("content-range") ?? "")?.[1]);
  } else {
    totalBytes = Number(response.headers.get("content-length") ?? NaN);
  }
  const head = await readAtMost(response, count);
  if (!Number.isSafeInteger(totalBytes)) throw new ImportSourceError(`${shown} did not say its size (no Content-Length or Content-Range)`);
  return { totalBytes: totalBytes!, head };
}

/** The whole image as a stream, and its size as the server states it. */
export async function openSourceStream(source: ImportSource, signal: AbortSignal): Promise<{ stream: Readable; totalBytes: number }> {
  const shown = shownSource(source);
  if (source.kind === "s3") {
    const { sdk, client } = await s3Client(source.s3);
    try {
      const got = await client.send(new sdk.GetObjectCommand({ Bucket: source.s3.bucket, Key: source.s3.key }), { abortSignal: signal });
      const stream = got.Body as Readable;
      stream.once("close", () => client.destroy());
      return { stream, totalBytes: got.ContentLength ?? 0 };
    } catch (error) {
      client.destroy();
      throw new ImportSourceError(`cannot read ${shown}: ${s3Reason(error)}`, { cause: error });
    }
  }
  const response = await fetchOrExplain(source.url, shown, {}, signal);
  if (response.status !== 200) throw new ImportSourceError(`${shown} answered ${response.status} to a full GET`);
  const totalBytes = Number(response.headers.get("content-length") ?? NaN);
  if (!Number.isSafeInteger(totalBytes)) throw new ImportSourceError(`${shown} did not say its size (no Content-Length)`);
  return { stream: Readable.fromWeb(response.body! as import("node:stream/web").ReadableStream), totalBytes };
}

async function fetchOrExplain(url: string, shown: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { headers, signal, redirect: "follow" });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new ImportSourceError(`cannot reach ${shown}: ${cause?.code ?? cause?.message ?? (error as Error).message}`, { cause: error });
  }
  if (response.status !== 200 && response.status !== 206) {
    await response.body?.cancel();
    throw new ImportSourceError(`${shown} answered ${response.status} ${response.statusText}`.trim());
  }
  return response;
}

async function readAtMost(response: Response, count: number): Promise<Buffer> {
  const reader = response.body!.getReader();
  const parts: Buffer[] = [];
  let length = 0;
  while (length < count) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(Buffer.from(value));
    length += value.length;
  }
  await reader.cancel();
  return Buffer.concat(parts).subarray(0, count);
}

function s3Reason(error: unknown): string {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return status ? `${e.name ?? "error"} (HTTP ${status})` : (e.name ?? "error");
}
