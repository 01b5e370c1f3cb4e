/** The options, hooks and figures of a Volume (volume.ts). */
import type { CacheBudget } from "../cache/cache-budget";
import type { FillWriter } from "../cache/fill-writer";
import type { ChunkIndex, ChunkRef } from "../chunk-index";
import type { ObjectStore } from "../object-store/object-store";
import type { Clock } from "../util/clock";
import { StorageError } from "../errors";
import { CHUNK_SIZE_RULE, isValidChunkSize } from "../sizes";
import type { ChunkBuffers } from "./chunk-buffers";
import type { ChunkCodec } from "./chunk-codec";
import { GENERATIONS_PER_EPOCH } from "./chunk-layout";

export type Durability = "local" | "cloud";

/** Uploads one frozen chunk; the gateway's implementation queues a job whose worker calls volume.uploadFrozenChunk. */
export interface ChunkUploader {
  upload(task: UploadTask): Promise<{ storedSize: number }>;
}

export interface UploadTask {
  volumeId: string;
  commitId: string;
  index: number;
  generation: number;
}

export interface CommittedMap {
  epoch: number;
  /** The whole chunk map after the commit (a private copy). */
  chunks: Map<number, ChunkRef>;
  /**
   * Hands over work the commit need not wait for (a FLUSH is answered without it): the volume
   * waits for it before it closes, and a failure is logged.
   */
  inBackground(work: Promise<void>): void;
}

export interface VolumeOptions {
  volumeId: string;
  /** Bytes; need not be a multiple of the chunk size. */
  size: number;
  /** Bytes: see isValidChunkSize (sizes.ts). */
  chunkSize: number;
  store: ObjectStore;
  index: ChunkIndex;
  /** Transforms chunk bytes to object bodies (default: identity). */
  codec?: ChunkCodec;
  /**
   * A clone's ancestors: the codec that opens each one's objects (its data key). Needed when the map
   * names chunks with an owner (ChunkRef.owner); a chunk rewritten by the clone uses `codec`.
   */
  inherited?: { codecFor(owner: string): ChunkCodec };
  /**
   * Root of the gateway's disk cache; this volume uses `<cacheDir>/<volumeId>/`. Without it a
   * private temporary directory is used and removed at close (nothing survives a restart).
   */
  cacheDir?: string;
  /** Shared by every volume of a gateway. Without it, a private budget from cacheBytes/dirtyLimitBytes. */
  cacheBudget?: CacheBudget;
  /** Private budget only: cache target in bytes (default 256 MiB). */
  cacheBytes?: number;
  /** Private budget only: dirty bytes beyond which writes wait (default 64 MiB). */
  dirtyLimitBytes?: number;
  /** What FLUSH waits for (default "cloud": the commit). */
  durability?: Durability;
  /**
   * With dirty data, a commit follows within about this long, however busy the volume (default
   * 5000): at the next flush, or by itself one more interval later if no flush comes.
   */
  commitIntervalMs?: number;
  /**
   * Commit sooner once nothing was written, trimmed or zeroed for this long: at once if the last
   * flush came after the last write, else at the next flush (default: no idle rule, only the
   * interval). So a burst reaches the bucket soon after it ends, while sustained writing commits
   * once per interval.
   */
  commitIdleMs?: number;
  /** Default: uploads in-process, `uploadConcurrency` at a time. */
  uploader?: ChunkUploader;
  /** Called after each commit landed in the index (the gateway writes the manifest). Failures are logged. */
  onCommitted?: (committed: CommittedMap) => void | Promise<void>;
  /** The writer's fencing token mod 65536: generations are epoch * 65536 + salt (default 0). */
  generationSalt?: number;
  /** Uploads in flight at once, prefetches, and the downloads read-ahead may keep in flight (default 16). */
  uploadConcurrency?: number;
  /** Chunks fetched ahead of a sequential reader (default 8). */
  readAheadChunks?: number;
  /** Upload chunks a sequential writer finished before their commit (default true; see write-behind.ts). */
  writeBehind?: boolean;
  /** Chunk buffer pools, shared by every volume of a gateway (default: this volume's own set). */
  buffers?: ChunkBuffers;
  /** Tests: writes fetched chunks into their cache files (default: fs.write in the thread pool). */
  fillWriter?: FillWriter;
  /** Tests: this boot's id, to play a reboot (default: the kernel's; see cache/reboot-marker.ts). */
  bootId?: string | null;
  /** The commit timers, retry backoff and fill holds run on this (default: the system clock). */
  clock?: Clock;
  logger?: VolumeLogger;
}

/** The subset of a pino logger the engine uses. */
export interface VolumeLogger {
  debug(details: object, message?: string): void;
  warn(details: object, message?: string): void;
}

export interface VolumeStats {
  /** The volume's size. */
  logicalBytes: number;
  /** Sum of the stored sizes of the committed chunk objects. */
  storedBytes: number;
  /** Plain bytes of the committed chunks / their stored bytes (1 when nothing is stored). */
  compressionRatio: number;
  /** Bytes of chunks written since the last commit. */
  dirtyBytes: number;
  /** Committed chunk objects. */
  chunksStored: number;
  /** The chunk map's current epoch: grows with every commit (by more than one when write-behind or a failed attempt used epochs). */
  epoch: number;
  /** Bytes of chunk files in the local cache (clean and dirty). */
  cachedBytes: number;
  /** Uploads of the running commit not finished yet. */
  queueDepth: number;
  /** When the last commit landed (ms since the Unix epoch), if any did since open. */
  lastCommitAt: number | undefined;
}

/**
 * Running totals since the volume opened, for metrics: plain fields the read and commit paths bump
 * (no allocation, no lookup), read by a scrape. Cache hits and misses count chunk pieces of reads.
 */
export interface VolumeCounters {
  /** Pieces of reads served from the cache, a fill on its way there, or a hole. */
  cacheHits: number;
  /** Pieces of reads that had to warm a cold chunk or fetch it from the store. */
  cacheMisses: number;
  /** Commits that moved the chunk map. */
  commits: number;
  /** Seconds those commits took in all, uploads and index update included. */
  commitSeconds: number;
  /** Seconds the last of them took (0 before the first). */
  lastCommitSeconds: number;
}

/** Throws EINVAL for a size, chunk size, salt or volume id a volume cannot have. */
export function checkVolumeOptions(options: VolumeOptions): void {
  const { size, chunkSize } = options;
  if (!Number.isSafeInteger(size) || size <= 0) throw new StorageError("EINVAL", `invalid volume size ${size}`);
  if (!isValidChunkSize(chunkSize)) {
    throw new StorageError("EINVAL", `chunk size ${chunkSize} is not ${CHUNK_SIZE_RULE}`);
  }
  const salt = options.generationSalt ?? 0;
  if (!Number.isInteger(salt) || salt < 0 || salt >= GENERATIONS_PER_EPOCH) {
    throw new StorageError("EINVAL", `generation salt ${salt} is not between 0 and ${GENERATIONS_PER_EPOCH - 1}`);
  }
  if (options.volumeId.length === 0 || /[/\\]/.test(options.volumeId) || options.volumeId.startsWith(".")) {
    throw new StorageError("EINVAL", `invalid volume id ${JSON.stringify(options.volumeId)}`);
  }
}

/** Throws EIO when the loaded chunk map names a chunk past the end of the volume. */
export function checkChunkMap(options: VolumeOptions, chunks: ReadonlyMap<number, ChunkRef>): void {
  const chunkCount = Math.ceil(options.size / options.chunkSize);
  for (const index of chunks.keys()) {
    if (!Number.isSafeInteger(index) || index < 0 || index >= chunkCount) {
      throw new StorageError("EIO", `chunk map of ${options.volumeId} names chunk ${index}, past the end (${chunkCount} chunks)`);
    }
  }
}
