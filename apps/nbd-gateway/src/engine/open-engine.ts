/**
 * Opening one volume's engine wires the durability stack from its row: the data key (dataKeyOf),
 * SealedCodec, the disk cache and its budget, the store, the uploader, commit timing, the lease's
 * fencing token, and a manifest write after every commit.
 */
import type { Database, VolumeRow } from "@stratus/db";
import {
  GENERATIONS_PER_EPOCH,
  SealedCodec,
  Volume,
  writeManifest,
  type ChunkBuffers,
  type CacheBudget,
  type ChunkCodec,
  type ChunkUploader,
  type CodecPool,
  type Compression,
  type KeySlot,
  type InheritedKey,
  type ObjectStore,
  type VolumeOptions,
} from "@stratus/storage";
import { openInheritedKeys } from "@stratus/storage";
import type { Logger } from "pino";
import { DbChunkIndex } from "../adapters/db-chunk-index";
import { VolumeLockedError, type KeyRing } from "../keys/key-ring";
import { VolumeMeter } from "../metrics/volume-meter";
import type { VolumeMeters } from "../metrics/volume-meters";

export interface Engine {
  volume: Volume;
  /** Its codec, released (its key dropped from the worker pool) when the volume closes. */
  codec: ChunkCodec;
  connections: number;
  /** When this engine opened (ms since the Unix epoch), for "attached since". */
  openedAt: number;
  /** Bytes NBD clients read and wrote through it (for the throughput chart): its meter's, since this open. */
  traffic: { readonly readBytes: number; readonly writtenBytes: number };
  /** The volume's request counters for metrics, bumped by every request (counting-device.ts). */
  meter: VolumeMeter;
  /** Closed by a lock while connections were attached: their releases must not close anything. */
  locked?: boolean;
  /** Who each connection is (the device credential's name, or "local"), one entry per connection. */
  clients: string[];
  lease: EngineLease;
  /** Set once the lease was lost: the volume was dropped without committing, its connections closed. */
  fenced?: boolean;
  /** What closes each connection when the engine is fenced. */
  revoked: Set<() => void>;
  /** What tells each connection to finish and disconnect when the volume is handed to another device. */
  handoffs: Set<() => void>;
  /** Set while the volume is being handed over: to whom (new connections of the old device are refused). */
  handingOffTo?: string;
  /** Settles when the engine is done: closed after its final commit, failed to flush (kept open), or fenced. */
  ended: Promise<EngineEnd>;
  end: (how: EngineEnd) => void;
}

/** How an engine's life ended: the lease was given back after a clean close, or not. */
export type EngineEnd = { kind: "closed" } | { kind: "flush-failed"; error: unknown } | { kind: "fenced" };

/** What opening an engine needs from the gateway. */
export interface EngineDeps {
  database: Database;
  /** The store engines use (the gateway passes a RetryingObjectStore). */
  store: ObjectStore;
  logger: Logger;
  keys: KeyRing;
  /** Root of the disk cache: <dataDir>/cache. */
  cacheDir: string;
  cacheBudget: CacheBudget;
  commitIntervalMs: number;
  commitIdleMs?: number;
  writeBehind?: boolean;
  /** BullMQ in the gateway; undefined: in-process uploads (tests). */
  uploader?: ChunkUploader;
  uploadConcurrency?: number;
  /** Seals and opens chunks off the event loop; undefined: on it (tests). */
  codecPool?: CodecPool;
  /** Each volume's request counters for /metrics; undefined (metrics off): a meter of its own per engine. */
  meters?: VolumeMeters;
}

/** The lease an engine was opened under. */
export interface EngineLease {
  /** Commits carry it; a newer holder's makes them fail. */
  fencingToken: number;
  /** The device that holds it (null: the local admin); only its connections share the engine. */
  deviceCredentialId: string | null;
  holderName: string;
  /** A commit was refused: check whether this lease was taken over. */
  onConflict: () => void;
}

/** The volume's data key (a locked volume throws VolumeLockedError): asked before any lease is taken. */
export function dataKeyOf(row: VolumeRow, deps: Pick<EngineDeps, "keys">): Promise<Buffer> {
  const slots: KeySlot[] = row.keySlots;
  return deps.keys.dataKeyFor(row.id, slots);
}

/** Whether this gateway can get the volume's key now (INFO of a locked volume or its snapshots says nothing). */
export async function keyAvailable(row: VolumeRow, deps: Pick<EngineDeps, "keys">): Promise<boolean> {
  try {
    await dataKeyOf(row, deps);
    return true;
  } catch (error) {
    if (error instanceof VolumeLockedError) return false;
    throw error;
  }
}

/** Opens a volume's engine, with no connection yet; a volume that fails to open releases its codec. */
export async function openEngine(row: VolumeRow, dataKey: Buffer, lease: EngineLease, deps: EngineDeps, buffers: ChunkBuffers): Promise<Engine> {
  const sealed = new SealedCodec({ dataKey, compression: row.compression as Compression });
  const codec: ChunkCodec = deps.codecPool === undefined ? sealed : sealed.pooled(deps.codecPool);
  let volume: Volume;
  try {
    volume = await openVolume(row, lease, codec, sealed, deps, buffers, inheritedCodecs(row, dataKey));
  } catch (error) {
    codec.release?.();
    throw error;
  }
  const meter = deps.meters?.meterFor(row.id) ?? new VolumeMeter();
  const base = { readBytes: meter.readBytes, writtenBytes: meter.writtenBytes };
  let end!: (how: EngineEnd) => void;
  const ended = new Promise<EngineEnd>((resolve) => (end = resolve));
  return {
    volume,
    codec,
    lease,
    connections: 0,
    openedAt: Date.now(),
    traffic: {
      get readBytes() {
        return meter.readBytes - base.readBytes;
      },
      get writtenBytes() {
        return meter.writtenBytes - base.writtenBytes;
      },
    },
    meter,
    clients: [],
    revoked: new Set(),
    handoffs: new Set(),
    ended,
    end,
  };
}

async function openVolume(
  row: VolumeRow,
  lease: EngineLease,
  codec: ChunkCodec,
  sealed: SealedCodec,
  deps: EngineDeps,
  buffers: ChunkBuffers,
  inherited: VolumeOptions["inherited"],
): Promise<Volume> {
  const { database, store, logger, cacheDir, cacheBudget, commitIntervalMs, commitIdleMs, writeBehind, uploader, uploadConcurrency } = deps;
  const volumeLogger = logger.child({ volumeId: row.id });
  // The lease's token is this engine's own: an earlier holder can commit nothing more, and no key this
  // one writes can be one an earlier engine (say, a crashed process) may still have a PUT in flight for.
  const { fencingToken } = lease;
  return Volume.open({
    volumeId: row.id,
    size: row.sizeBytes,
    chunkSize: row.chunkSize,
    store,
    index: new DbChunkIndex(database.db, row.id, fencingToken, lease.onConflict),
    codec,
    inherited,
    cacheDir,
    cacheBudget,
    buffers,
    durability: row.durability,
    commitIntervalMs,
    commitIdleMs,
    writeBehind,
    uploader,
    uploadConcurrency,
    generationSalt: fencingToken % GENERATIONS_PER_EPOCH,
    onCommitted: ({ epoch, chunks, inBackground }) => writeManifest(store, sealed, row.id, epoch, chunks, { pruneInBackground: inBackground }),
    logger: volumeLogger,
  });
}

/**
 * A clone reads the chunks it shares with its ancestors under their keys (docs/snapshots-design.md):
 * one codec per ancestor, made on first use. Unpooled: only first reads of shared chunks use them.
 */
function inheritedCodecs(row: VolumeRow, dataKey: Buffer): VolumeOptions["inherited"] {
  const inherited = row.inheritedKeys as InheritedKey[];
  if (inherited.length === 0) return undefined;
  const keys = openInheritedKeys(row.id, dataKey, inherited);
  const codecs = new Map<string, SealedCodec>();
  return {
    codecFor: (owner) => {
      let codec = codecs.get(owner);
      if (codec === undefined) {
        const key = keys.get(owner);
        if (key === undefined) throw new Error(`volume ${row.id} reads objects of ${owner} but carries no key for it`);
        codec = new SealedCodec({ dataKey: key, compression: row.compression as Compression });
        codecs.set(owner, codec);
      }
      return codec;
    },
  };
}
