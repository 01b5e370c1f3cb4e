/**
 * Builds the configured object store and proves it answers before anything is served: a wrong endpoint,
 * bucket or key should stop the start with a sentence, not fail the first write a user makes.
 */
import { mkdir } from "node:fs/promises";
import { DirectoryObjectStore, type ObjectStore } from "@stratus/storage";

export type StoreSettings =
  | { kind: "directory"; root: string }
  | { kind: "s3"; endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string; forcePathStyle: boolean };

export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StartupError";
  }
}

export async function openObjectStore(config: StoreSettings): Promise<ObjectStore> {
  if (config.kind === "directory") {
    await mkdir(config.root, { recursive: true });
    return new DirectoryObjectStore(config.root);
  }
  // Loaded only here: the AWS SDK is megabytes of heap that a directory store never uses.
  const { S3ObjectStore } = await import("@stratus/storage/s3-store");
  const store = new S3ObjectStore({
    endpoint: config.endpoint,
    region: config.region,
    bucket: config.bucket,
    forcePathStyle: config.forcePathStyle,
    credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
  });
  try {
    await store.list({ prefix: "vol/", limit: 1 });
  } catch (error) {
    await store.close();
    const reason = rootCause(error);
    throw new StartupError(`cannot use S3 bucket "${config.bucket}" at ${config.endpoint}: ${reason}`, { cause: error });
  }
  return store;
}

export function rootCause(error: unknown): string {
  let current: unknown = error;
  const seen = new Set<unknown>();
  let message = error instanceof Error ? error.message : String(error);
  while (current instanceof Error && !seen.has(current)) {
    seen.add(current);
    if (current.message) message = current.message;
    current = current.cause;
  }
  return message;
}
