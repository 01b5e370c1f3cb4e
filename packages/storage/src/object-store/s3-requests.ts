/**
 * PUT and GET of chunk objects, sent with node:http (or PlainHttpClient on a plain-http endpoint)
 * and signed by the SDK's own SigV4 signer without the S3 client's middleware, which costs several
 * times the CPU per request (docs/performance.md). HEAD, LIST and DeleteObjects stay with the SDK.
 * Errors keep S3ObjectStore's shape (S3Failure: the S3 error code and HTTP status), never a
 * credential or a signed URL.
 */
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { SignatureV4 } from "@smithy/signature-v4";
import { NeedsFallback, PlainHttpClient, PlainHttpFailure, type PlainHttpResponse } from "./plain-http-client";

type SourceData = string | ArrayBuffer | ArrayBufferView;

function asBytes(data: SourceData): string | Uint8Array {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export interface S3RequestTarget {
  /** e.g. http://127.0.0.1:4568, or https://s3.eu-west-1.amazonaws.com */
  endpoint: URL;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string };
  agents: { httpAgent: http.Agent; httpsAgent: https.Agent };
  /** Milliseconds a request may go without any traffic before it fails (as the SDK's requestTimeout). */
  requestTimeoutMs: number;
}

/** A request S3 (or the network) refused: `name` is the S3 error code or the socket error's. */
export class S3Failure extends Error {
  constructor(
    override readonly name: string,
    readonly status: number | undefined,
  ) {
    super(status === undefined ? name : `${name} (HTTP ${status})`);
  }
}

/** Error bodies are small XML documents; more than this is not read. */
const MAX_ERROR_BODY = 64 * 1024;

export class S3Requests {
  readonly #target: S3RequestTarget;
  readonly #signer: SignatureV4;
  readonly #transport: typeof http | typeof https;
  readonly #agent: http.Agent;
  /** GETs that read bodies in place, and PUTs; undefined for https (TLS stays with node:https). */
  readonly #plain: PlainHttpClient | undefined;
  /** The server answered without Content-Length once: node:http from then on. */
  #unsized = false;

  constructor(target: S3RequestTarget) {
    this.#target = target;
    this.#signer = new SignatureV4({
      service: "s3",
      region: target.region,
      credentials: target.credentials,
      sha256: NodeSha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const secure = target.endpoint.protocol === "https:";
    this.#transport = secure ? https : http;
    this.#agent = secure ? target.agents.httpsAgent : target.agents.httpAgent;
    this.#plain = secure
      ? undefined
      : new PlainHttpClient({
          host: target.endpoint.hostname.replace(/^\[|\]$/g, ""),
          port: target.endpoint.port === "" ? 80 : Number(target.endpoint.port),
          maxSockets: Number.isFinite(this.#agent.maxSockets) ? this.#agent.maxSockets : 64,
          timeoutMs: target.requestTimeoutMs,
        });
  }

  /** Whether GET (getInto) and PUT go through PlainHttpClient: a plain-http endpoint whose answers carry their length. */
  get usesPlainHttp(): boolean {
    return this.#plain !== undefined && !this.#unsized;
  }

  /**
   * GET of `key` (with `range` as "bytes=a-b") whose body is read from the socket straight into
   * `allocate(Content-Length)`: the body and the Content-Range answered, or undefined for a missing
   * key. Throws NeedsFallback when the server answered without a length (then use get()).
   */
  async getInto(
    key: string,
    range: string | undefined,
    allocate: (length: number) => Buffer,
  ): Promise<{ body: Buffer; contentRange: string | undefined } | undefined> {
    const headers: Record<string, string> = { "x-amz-content-sha256": EMPTY_SHA256 };
    if (range !== undefined) headers.range = range;
    const { path, signedHeaders } = await this.#sign("GET", key, headers);
    const response = await this.#plainly(() => this.#plain!.get(path, signedHeaders, allocate));
    if (response.status === 200 || response.status === 206) return { body: response.body, contentRange: response.headers.get("content-range") };
    const refused = failureFrom(response.status, response.body);
    if (refused.status === 404 && refused.name !== "NoSuchBucket") return undefined;
    throw refused;
  }

  close(): void {
    this.#plain?.close();
  }

  /** A PlainHttpClient request, its failures in S3Failure's shape; NeedsFallback also switches to node:http. */
  async #plainly(request: () => Promise<PlainHttpResponse>): Promise<PlainHttpResponse> {
    try {
      return await request();
    } catch (error) {
      if (error instanceof NeedsFallback) this.#unsized = true;
      if (error instanceof PlainHttpFailure) throw new S3Failure(error.name, undefined);
      throw error;
    }
  }

  /** Stores `body` under `key`; `sha256` (hex) is signed as the payload hash instead of hashing the body here. */
  async put(key: string, body: Uint8Array, sha256?: string): Promise<void> {
    const payloadHash = sha256 ?? createHash("sha256").update(body).digest("hex");
    const headers = { "content-length": String(body.length), "x-amz-content-sha256": payloadHash };
    if (this.usesPlainHttp) {
      const { path, signedHeaders } = await this.#sign("PUT", key, headers);
      const response = await this.#plainly(() => this.#plain!.put(path, signedHeaders, body));
      if (response.status !== 200) throw failureFrom(response.status, response.body);
      return;
    }
    const response = await this.#send("PUT", key, headers, body);
    if (response.statusCode !== 200) throw await failure(response);
    response.resume();
  }

  /**
   * The response to a GET of `key` (with `range` as "bytes=a-b"), its status 200 or 206 and its body
   * not read yet; undefined for a missing key (404 NoSuchKey — a missing bucket is an error).
   */
  async get(key: string, range?: string): Promise<IncomingMessage | undefined> {
    const headers: Record<string, string> = { "x-amz-content-sha256": EMPTY_SHA256 };
    if (range !== undefined) headers.range = range;
    const response = await this.#send("GET", key, headers);
    if (response.statusCode === 200 || response.statusCode === 206) return response;
    const refused = await failure(response);
    if (refused.status === 404 && refused.name !== "NoSuchBucket") return undefined;
    throw refused;
  }

  /** The request's path and its headers, Host and SigV4 signature included. */
  async #sign(method: "PUT" | "GET", key: string, headers: Record<string, string>): Promise<{ path: string; signedHeaders: Record<string, string> }> {
    const { endpoint, bucket, forcePathStyle } = this.#target;
    const objectPath = key.split("/").map(escapeSegment).join("/");
    const hostname = forcePathStyle ? endpoint.hostname : `${bucket}.${endpoint.hostname}`;
    const host = endpoint.port === "" ? hostname : `${hostname}:${endpoint.port}`;
    const basePath = endpoint.pathname.replace(/\/$/, "");
    const path = forcePathStyle ? `${basePath}/${bucket}/${objectPath}` : `${basePath}/${objectPath}`;
    const signed = await this.#signer.sign({
      method,
      protocol: endpoint.protocol,
      hostname,
      port: endpoint.port === "" ? undefined : Number(endpoint.port),
      path,
      query: {},
      headers: { ...headers, host },
    });
    return { path, signedHeaders: signed.headers };
  }

  async #send(method: "PUT" | "GET", key: string, headers: Record<string, string>, body?: Uint8Array): Promise<IncomingMessage> {
    const { endpoint } = this.#target;
    const { path, signedHeaders } = await this.#sign(method, key, headers);
    return new Promise<IncomingMessage>((resolve, reject) => {
      const request = this.#transport.request(
        {
          agent: this.#agent,
          protocol: endpoint.protocol,
          hostname: endpoint.hostname.replace(/^\[|\]$/g, ""),
          port: endpoint.port,
          method,
          path,
          headers: signedHeaders,
          setHost: false,
        },
        resolve,
      );
      request.setTimeout(this.#target.requestTimeoutMs, () => request.destroy(new S3Failure("TimeoutError", undefined)));
      request.on("error", (error: NodeJS.ErrnoException) => reject(error instanceof S3Failure ? error : new S3Failure(error.code ?? error.name, undefined)));
      request.end(body);
    });
  }
}

/** Reads an error response's S3 code (or names the status when the body has none). */
async function failure(response: IncomingMessage): Promise<S3Failure> {
  const parts: Buffer[] = [];
  let length = 0;
  try {
    for await (const part of response) {
      if (length >= MAX_ERROR_BODY) continue;
      parts.push(part as Buffer);
      length += (part as Buffer).length;
    }
  } catch {
    // The body broke off: the status alone still says what happened.
  }
  return failureFrom(response.statusCode ?? 0, Buffer.concat(parts));
}

/** The S3 error code in an error response's body, or the status named when it has none. */
function failureFrom(status: number, body: Buffer): S3Failure {
  const code = /<Code>([^<]{1,100})<\/Code>/.exec(body.toString("utf8"))?.[1];
  return new S3Failure(code ?? (status === 404 ? "NotFound" : `HTTP${status}`), status);
}

/** RFC 3986 unreserved characters stay, everything else is percent-encoded (as S3's canonical URI wants). */
function escapeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const EMPTY_SHA256 = createHash("sha256").digest("hex");

/** The hash the signer asks for, from node:crypto (HMAC when given a secret). */
class NodeSha256 {
  readonly #secret: string | Uint8Array | undefined;
  #hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#secret = secret === undefined ? undefined : asBytes(secret);
    this.#hash = this.#fresh();
  }
  update(data: SourceData): void {
    this.#hash.update(asBytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.#hash.digest());
  }
  reset(): void {
    this.#hash = this.#fresh();
  }
  #fresh(): Hash | Hmac {
    return this.#secret === undefined ? createHash("sha256") : createHmac("sha256", this.#secret);
  }
}
