/**
 * Opening one volume's engine wires the durability stack from its row: the data key from the
 * KeyRing (a locked volume throws VolumeLockedError), SealedCodec, the disk cache and its budget,
 * the store, the uploader, commit timing, a fencing token, and a manifest write after every commit.
 */
import type { Database, VolumeRow } from "@stratus/db";
import { takeFencingToken } from "@stratus/db";
import {
  GENERATIONS_PER_EPOCH,
  SealedCodec,
  StorageError,
  Volume,
  writeManifest,
  type ChunkBuffers,
  type CacheBudget,
  type ChunkCodec,
  type ChunkUploader,
  type CodecPool,
  type Compression,
  type KeySlot,
  type ObjectStore,
} from "@stratus/storage";
import type { Logger } from "pino";
import { DbChunkIndex } from "../adapters/db-chunk-index";
import type { KeyRing } from "../keys/key-ring";

export interface Engine {
  volume: Volume;
  /** Its codec, released (its key dropped from the worker pool) when the volume closes. */
  codec: ChunkCodec;
  connections: number;
  /** When this engine opened (ms since the Unix epoch), for "attached since". */
  openedAt: number;
  /** Bytes NBD clients read and wrote through it (for the throughput chart). */
  traffic: { readBytes: number; writtenBytes: number };
  /** Closed by a lock while connections were attached: their releases must not close anything. */
  locked?: boolean;
  /** Who each connection is (the device credential's name, or "local"), one entry per connection. */
  clients: string[];
}

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
}

/** Opens a volume's engine, with no connection yet; a volume that fails to open releases its codec. */
export async function openEngine(row: VolumeRow, deps: EngineDeps, buffers: ChunkBuffers): Promise<Engine> {
  const slots: KeySlot[] = row.keySlots;
  const dataKey = await deps.keys.dataKeyFor(row.id, slots);
  const sealed = new SealedCodec({ dataKey, compression: row.compression as Compression });
  const codec: ChunkCodec = deps.codecPool === undefined ? sealed : sealed.pooled(deps.codecPool);
  let volume: Volume;
  try {
    volume = await openVolume(row, codec, sealed, deps, buffers);
  } catch (error) {
    codec.release?.();
    throw error;
  }
  return { volume, codec, connections: 0, openedAt: Date.now(), traffic: { readBytes: 0, writtenBytes: 0 }, clients: [] };
}

async function openVolume(row: VolumeRow, codec: ChunkCodec, sealed: SealedCodec, deps: EngineDeps, buffers: ChunkBuffers): Promise<Volume> {
  const { database, store, logger, cacheDir, cacheBudget, commitIntervalMs, commitIdleMs, writeBehind, uploader, uploadConcurrency } = deps;
  const volumeLogger = logger.child({ volumeId: row.id });
  // A token of its own for this engine: an earlier one can commit nothing more, and no key this one
  // writes can be one an earlier engine (say, a crashed process) may still have a PUT in flight for.
  const fencingToken = await takeFencingToken(database.db, row.id).catch((error: unknown) => {
    throw new StorageError("EIO", `could not take a fencing token for ${row.id}`, { cause: error });
  });
  return Volume.open({
    volumeId: row.id,
    size: row.sizeBytes,
    chunkSize: row.chunkSize,
    store,
    index: new DbChunkIndex(database.db, row.id, fencingToken),
    codec,
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
    onCommitted: ({ epoch, chunks }) => writeManifest(store, sealed, row.id, epoch, chunks),
    logger: volumeLogger,
  });
}
