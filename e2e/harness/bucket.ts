/**
 * Looking into a gateway's bucket from the outside, the way an operator (or an attacker with the
 * bucket) could: list keys, grep object bytes, and decode a volume's newest manifest with the
 * deployment's master key (the bucket is self-describing: header + wrapped key slots + manifests).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import {
  DirectoryObjectStore,
  parseChunkKey,
  parseMasterKey,
  readLatestManifest,
  readVolumeHeader,
  SealedCodec,
  unlockDataKey,
  type ObjectInfo,
  type ObjectStore,
} from "@stratus/storage";
import { S3ObjectStore } from "@stratus/storage/s3-store";
import type { S3TestServer } from "@stratus/storage/testing";

/** The gateway environment that points it at an S3 server (or at a fault proxy in front of one). */
export function s3GatewayEnv(server: S3TestServer, endpoint = server.endpoint): Record<string, string> {
  return {
    STRATUS_S3_ENDPOINT: endpoint,
    STRATUS_S3_BUCKET: server.bucket,
    STRATUS_S3_REGION: server.region,
    STRATUS_S3_ACCESS_KEY_ID: server.accessKeyId,
    STRATUS_S3_SECRET_ACCESS_KEY: server.secretAccessKey,
    STRATUS_S3_FORCE_PATH_STYLE: "true",
  };
}

/** A store reading the same bucket as the gateway: its local directory, or the S3 server directly. */
export function openBucket(where: { dataDir: string } | S3TestServer): ObjectStore {
  if ("dataDir" in where) return new DirectoryObjectStore(path.join(where.dataDir, "bucket"));
  return new S3ObjectStore({
    bucket: where.bucket,
    endpoint: where.endpoint,
    region: where.region,
    forcePathStyle: true,
    credentials: { accessKeyId: where.accessKeyId, secretAccessKey: where.secretAccessKey },
  });
}

export async function listObjects(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const all: ObjectInfo[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list({ prefix, startAfter });
    all.push(...page.objects);
    const last = page.objects.at(-1);
    if (!page.truncated || last === undefined) return all;
    startAfter = last.key;
  }
}

/** Keys of objects under `prefix` whose bytes contain any of `needles`. */
export async function grepObjects(store: ObjectStore, prefix: string, needles: readonly Buffer[]): Promise<string[]> {
  const hits: string[] = [];
  for (const object of await listObjects(store, prefix)) {
    const body = await store.get(object.key);
    if (body && needles.some((needle) => body.includes(needle))) hits.push(object.key);
  }
  return hits;
}

/** Chunk objects of a volume as "index/generation" strings (sorted). */
export async function chunkGenerations(store: ObjectStore, volumeId: string): Promise<string[]> {
  const objects = await listObjects(store, `vol/${volumeId}/c/`);
  return objects
    .map((o) => parseChunkKey(o.key))
    .filter((p) => p !== undefined)
    .map((p) => `${p.index}/${p.generation}`)
    .sort();
}

/** The master key the gateway uses: the one passed in STRATUS_MASTER_KEY, or <dataDir>/master.key. */
export async function gatewayMasterKey(dataDir: string, env: Record<string, string> = {}): Promise<Buffer> {
  const text = env.STRATUS_MASTER_KEY ?? (await readFile(path.join(dataDir, "master.key"), "utf8"));
  return parseMasterKey(text);
}

/**
 * The committed chunk map in the newest manifest, read from the bucket alone with the master key
 * (header -> master slot -> data key -> manifest). Entries are "index/generation" strings (sorted).
 */
export async function manifestGenerations(store: ObjectStore, volumeId: string, masterKey: Buffer): Promise<{ epoch: number; chunks: string[] } | undefined> {
  const header = await readVolumeHeader(store, volumeId);
  if (!header) throw new Error(`no volume header for ${volumeId} in the bucket`);
  const dataKey = await unlockDataKey({ volumeId, slots: header.slots, masterKey });
  const manifest = await readLatestManifest(store, new SealedCodec({ dataKey, compression: header.compression }), volumeId);
  if (!manifest) return undefined;
  const chunks = [...manifest.chunks].map(([index, c]) => `${index}/${c.generation}`).sort();
  return { epoch: manifest.epoch, chunks };
}
