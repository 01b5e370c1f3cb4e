/**
 * A real S3-protocol server for tests: s3rver (npm, pure JavaScript, no daemon to install)
 * started as a child process (s3rver-child.mjs, which also patches one s3rver bug) on 127.0.0.1 with a free port and a throwaway data directory.
 * NODE_OPTIONS=--openssl-legacy-provider is required on Node 20, or s3rver answers 500 to any
 * truncated ListObjectsV2. s3rver accepts only the credentials S3RVER/S3RVER.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";

export interface S3TestServer {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  /** The server's process (the bench reads its CPU time). */
  pid: number;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /**
   * Requests the server has answered since it started, grouped by the first segment of the object
   * key ("(bucket)" for bucket-level requests such as a list or a multi-object delete). Diff two
   * snapshots to count a stretch of work.
   */
  requestCounts(): Promise<Record<string, S3RequestCounts>>;
  /** Kills the server and removes its data directory. */
  stop(): Promise<void>;
}

export interface S3RequestCounts {
  PUT: number;
  GET: number;
  DELETE: number;
  POST: number;
  HEAD: number;
  OTHER: number;
  /** Request bodies received (by Content-Length) and response bodies sent. */
  bodyBytesIn: number;
  bodyBytesOut: number;
}

export interface S3TestServerOptions {
  /** Bucket created at start (default "stratus-test"). */
  bucket?: string;
  /** How long to wait for the server to answer (default 30 s). */
  startTimeoutMs?: number;
  /** Where its data directory is made (default: the system's temporary directory). */
  parentDir?: string;
}

export async function startS3TestServer(options: S3TestServerOptions = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? "stratus-test";
  const region = "us-east-1";
  const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
  const directory = await mkdtemp(path.join(options.parentDir ?? tmpdir(), "stratus-s3rver-"));
  const script = fileURLToPath(new URL("./s3rver-child.mjs", import.meta.url));
  const child = spawn(process.execPath, [script, directory, bucket], {
    env: { ...process.env, NODE_OPTIONS: "--openssl-legacy-provider" },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  // The IPC channel must not keep the test process alive; it is referenced only while a question waits.
  child.channel?.unref();
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const stop = async () => {
    process.off("exit", killOnExit);
    await killChild(child);
    await rm(directory, { recursive: true, force: true });
  };

  try {
    const port = await waitForListeningPort(child, options.startTimeoutMs ?? 30_000);
    const endpoint = `http://127.0.0.1:${port}`;
    await waitForBucket(endpoint, bucket, region, credentials, options.startTimeoutMs ?? 30_000);
    return { endpoint, pid: child.pid!, bucket, region, ...credentials, requestCounts: () => askCounts(child), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

let nextQuestion = 0;

/** Asks the child (s3rver-child.mjs) for its request counts. */
function askCounts(child: ChildProcess): Promise<Record<string, S3RequestCounts>> {
  const id = ++nextQuestion;
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type?: string; id?: number; counts?: Record<string, S3RequestCounts> }) => {
      if (message.type !== "counts" || message.id !== id) return;
      finish();
      resolve(message.counts ?? {});
    };
    const onExit = () => {
      finish();
      reject(new Error("s3rver exited before it reported its request counts"));
    };
    const finish = () => {
      child.off("message", onMessage);
      child.off("exit", onExit);
      child.channel?.unref();
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.channel?.ref();
    child.send({ type: "counts", id }, (error) => {
      if (error) {
        finish();
        reject(error);
      }
    });
  });
}

/** The child prints "listening on 127.0.0.1:PORT" once its HTTP server is bound. */
function waitForListeningPort(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => fail(new Error(`s3rver did not start within ${timeoutMs} ms: ${output}`)), timeoutMs);
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = /listening on [\d.]+:(\d+)/.exec(output);
      if (match) done(() => resolve(Number(match[1])));
    };
    const onExit = (code: number | null) => fail(new Error(`s3rver exited (${code}) before listening: ${output}`));
    const fail = (error: Error) => done(() => reject(error));
    const done = (settle: () => void) => {
      clearTimeout(timer);
      child.stdout!.off("data", onData);
      child.stderr!.off("data", onData);
      child.off("exit", onExit);
      // Keep draining so a chatty server never blocks on a full pipe.
      child.stdout!.resume();
      child.stderr!.resume();
      settle();
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", onExit);
  });
}

async function waitForBucket(
  endpoint: string,
  bucket: string,
  region: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  timeoutMs: number,
): Promise<void> {
  const client = new S3Client({ endpoint, region, credentials, forcePathStyle: true, maxAttempts: 1 });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`s3rver at ${endpoint} never answered for bucket ${bucket}`, { cause: error });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } finally {
    client.destroy();
  }
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}
