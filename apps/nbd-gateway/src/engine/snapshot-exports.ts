/**
 * Snapshots as read-only NBD exports, `VOL@NAME` (docs/snapshots-design.md): each open gets a
 * SnapshotDevice over the snapshot's pinned map, reading from the bucket under the keys of every
 * volume whose objects it names (the volume's own, and its ancestors' when it is a clone). No lease:
 * a snapshot never changes, so it may be read anywhere while its volume is written.
 */
import { findSnapshotByName, listSnapshots, loadSnapshotMap, type Database, type VolumeRow } from "@stratus/db";
import {
  ChunkBuffers,
  openInheritedKeys,
  SealedCodec,
  SnapshotDevice,
  snapshotCapabilities,
  type Compression,
  type InheritedKey,
  type ObjectStore,
} from "@stratus/storage";
import { VolumeLockedError } from "../keys/key-ring";
import type { ExportDescription, ExportSummary, OpenedExport } from "../server/export-registry";
import { dataKeyOf, keyAvailable, type EngineDeps } from "./open-engine";

/** `VOL@NAME` -> its two parts; undefined for a plain volume name. */
export function splitSnapshotExport(name: string): { volume: string; snapshot: string } | undefined {
  const at = name.lastIndexOf("@");
  if (at <= 0 || at === name.length - 1) return undefined;
  return { volume: name.slice(0, at), snapshot: name.slice(at + 1) };
}

/** Every codec a volume reads with (its own key, its ancestors'); unpooled: snapshot reads are rare. */
export async function readingCodecs(row: VolumeRow, deps: Pick<EngineDeps, "keys">): Promise<Map<string, SealedCodec>> {
  const dataKey = await dataKeyOf(row, deps);
  const compression = row.compression as Compression;
  const codecs = new Map([[row.id, new SealedCodec({ dataKey, compression })]]);
  for (const [volumeId, key] of openInheritedKeys(row.id, dataKey, row.inheritedKeys as InheritedKey[])) {
    codecs.set(volumeId, new SealedCodec({ dataKey: key, compression }));
    key.fill(0);
  }
  return codecs;
}

export class SnapshotExports {
  readonly #buffers = new ChunkBuffers();

  constructor(private readonly deps: { database: Database; store: ObjectStore; keys: EngineDeps["keys"] }) {}

  async list(volumes: readonly VolumeRow[]): Promise<ExportSummary[]> {
    const out: ExportSummary[] = [];
    for (const volume of volumes) {
      for (const snapshot of await listSnapshots(this.deps.database.db, volume.id)) {
        out.push({ name: `${volume.name}@${snapshot.name}`, description: `snapshot of ${volume.name} at epoch ${snapshot.epoch} (read-only)` });
      }
    }
    return out;
  }

  /** As a volume's: a locked volume's snapshots are not there for INFO either. */
  async describe(volume: VolumeRow, snapshotName: string): Promise<ExportDescription | undefined> {
    const snapshot = await findSnapshotByName(this.deps.database.db, volume.id, snapshotName);
    if (!snapshot) return undefined;
    if (!(await keyAvailable(volume, this.deps))) return undefined;
    const name = `${volume.name}@${snapshot.name}`;
    return { name, description: `snapshot of ${volume.name} (read-only)`, size: snapshot.sizeBytes, capabilities: snapshotCapabilities(volume.chunkSize) };
  }

  /** The snapshot served read-only, or undefined (no such snapshot, or its volume is locked). */
  async open(volume: VolumeRow, snapshotName: string): Promise<OpenedExport | undefined> {
    const db = this.deps.database.db;
    const snapshot = await findSnapshotByName(db, volume.id, snapshotName);
    if (!snapshot) return undefined;
    let codecs: Map<string, SealedCodec>;
    try {
      codecs = await readingCodecs(volume, this.deps);
    } catch (error) {
      if (error instanceof VolumeLockedError) return undefined;
      throw error;
    }
    const device = new SnapshotDevice({
      volumeId: volume.id,
      size: snapshot.sizeBytes,
      chunkSize: volume.chunkSize,
      store: this.deps.store,
      chunks: await loadSnapshotMap(db, snapshot.id),
      buffers: this.#buffers,
      codecFor: (owner) => {
        const codec = codecs.get(owner);
        if (codec === undefined) throw new Error(`snapshot ${snapshot.id} names objects of ${owner}, whose key the volume does not carry`);
        return codec;
      },
    });
    const name = `${volume.name}@${snapshot.name}`;
    return { name, description: `snapshot of ${volume.name} (read-only)`, device, release: async () => device.close() };
  }
}
