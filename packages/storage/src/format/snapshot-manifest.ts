/**
 * Snapshot manifests `vol/<volumeId>/s/<snapshotId>`: a snapshot's name, epoch, size and chunk map,
 * so `stratus volume recover --from-bucket` brings snapshots back with their volume. Sealed like a
 * manifest (kind 2, generation = epoch), with the snapshot id in the additional data, so one cannot
 * be passed off as another snapshot's or another volume's. Body:
 *
 *   varint length | UTF-8 JSON { id, name, createdAt, sizeBytes } | manifest body (manifest.ts)
 *
 * Never pruned by writeManifest (which keeps to m/); deleted with the snapshot or the volume.
 */
import * as z from "zod";
import { StorageError } from "../errors";
import type { ObjectStore } from "../object-store/object-store";
import { volumePrefix } from "../volume/chunk-layout";
import { decodeManifestBody, encodeManifestBody, type ManifestChunk, type ManifestCodec } from "./manifest";

const SNAPSHOT_ID = /^[A-Za-z0-9_-]+$/;

const snapshotFacts = z.object({
  id: z.string().regex(SNAPSHOT_ID),
  name: z.string().min(1),
  /** ISO 8601 */
  createdAt: z.string().min(1),
  sizeBytes: z.number().int().positive(),
});

export type SnapshotFacts = z.infer<typeof snapshotFacts>;

export interface SnapshotManifest extends SnapshotFacts {
  epoch: number;
  chunks: Map<number, ManifestChunk>;
}

export function snapshotManifestPrefix(volumeId: string): string {
  return `${volumePrefix(volumeId)}s/`;
}

export function snapshotManifestKey(volumeId: string, snapshotId: string): string {
  if (!SNAPSHOT_ID.test(snapshotId)) throw new StorageError("EINVAL", `bad snapshot id ${JSON.stringify(snapshotId)}`);
  return `${snapshotManifestPrefix(volumeId)}${snapshotId}`;
}

/** What the seal binds: the volume and the snapshot (the id is never reused, so no epoch is needed). */
const sealedAs = (volumeId: string, snapshotId: string) => `${volumeId}/s/${snapshotId}`;
const SEALED_GENERATION = 0;

export async function writeSnapshotManifest(store: ObjectStore, codec: ManifestCodec, volumeId: string, snapshot: SnapshotManifest): Promise<void> {
  const facts = Buffer.from(
    JSON.stringify(snapshotFacts.parse({ id: snapshot.id, name: snapshot.name, createdAt: snapshot.createdAt, sizeBytes: snapshot.sizeBytes })),
  );
  // Two bytes of length (7 + 7 bits, the first with its high bit set): the facts are short JSON.
  if (facts.length >= 0x4000) throw new StorageError("EINVAL", "snapshot facts too long");
  const length = Buffer.from([(facts.length & 0x7f) | 0x80, facts.length >> 7]);
  const plain = Buffer.concat([length, facts, encodeManifestBody(snapshot.epoch, snapshot.chunks)]);
  const body = codec.encodeManifest(plain, { volumeId: sealedAs(volumeId, snapshot.id), epoch: SEALED_GENERATION });
  await store.put(snapshotManifestKey(volumeId, snapshot.id), body);
}

export async function deleteSnapshotManifest(store: ObjectStore, volumeId: string, snapshotId: string): Promise<void> {
  await store.deleteMany([snapshotManifestKey(volumeId, snapshotId)]);
}

/**
 * Every snapshot manifest of the volume that opens; one that does not (tampered, another key) is
 * reported through onInvalid and skipped.
 */
export async function readSnapshotManifests(
  store: ObjectStore,
  codec: ManifestCodec,
  volumeId: string,
  options: { onInvalid?: (key: string, error: StorageError) => void } = {},
): Promise<SnapshotManifest[]> {
  const prefix = snapshotManifestPrefix(volumeId);
  const out: SnapshotManifest[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list({ prefix, startAfter });
    for (const object of page.objects) {
      const snapshotId = object.key.slice(prefix.length);
      if (!SNAPSHOT_ID.test(snapshotId)) continue;
      const stored = await store.get(object.key);
      if (stored === undefined) continue;
      try {
        out.push(openSnapshotManifest(codec, volumeId, snapshotId, stored, object.key));
      } catch (error) {
        if (!(error instanceof StorageError) || error.code !== "EIO") throw error;
        options.onInvalid?.(object.key, error);
      }
    }
    const last = page.objects.at(-1);
    if (!page.truncated || last === undefined) break;
    startAfter = last.key;
  }
  return out;
}

function openSnapshotManifest(codec: ManifestCodec, volumeId: string, snapshotId: string, stored: Buffer, key: string): SnapshotManifest {
  const plain = codec.decodeManifest(stored, { volumeId: sealedAs(volumeId, snapshotId), epoch: SEALED_GENERATION });
  if (plain.length < 2) throw new StorageError("EIO", `${key} is truncated`);
  const factsLength = (plain[0]! & 0x7f) | (plain[1]! << 7);
  let facts: SnapshotFacts;
  try {
    facts = snapshotFacts.parse(JSON.parse(plain.toString("utf8", 2, 2 + factsLength)));
  } catch (error) {
    throw new StorageError("EIO", `${key} has unreadable facts`, { cause: error });
  }
  if (facts.id !== snapshotId) throw new StorageError("EIO", `${key} names snapshot ${facts.id}`);
  const manifest = decodeManifestBody(plain.subarray(2 + factsLength), key);
  return { ...facts, epoch: manifest.epoch, chunks: manifest.chunks };
}
