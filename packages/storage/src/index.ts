export * from "./object-store/object-store";
export * from "./block-device";
export * from "./chunk-index";
export * from "./errors";
export { MemoryObjectStore } from "./object-store/memory-store";
export { DirectoryObjectStore, type DirectoryObjectStoreOptions } from "./object-store/directory-store";
// The class is "@stratus/storage/s3-store": importing it loads the AWS SDK, which a directory store never needs.
export type { S3ObjectStore, S3ObjectStoreOptions } from "./object-store/s3-store";
export { compareKeys } from "./object-store/object-store-helpers";
export {
  Volume,
  volumeCapabilities,
  type VolumeOptions,
  type VolumeLogger,
  type VolumeStats,
  type VolumeCounters,
  type Durability,
  type ChunkUploader,
  type UploadTask,
  type CommittedMap,
} from "./volume/volume";
export { CacheBudget, type CacheBudgetOptions } from "./cache/cache-budget";
export { hasDirtyChunks, registerDormantCaches } from "./cache/dormant-caches";
export { dirtyImageStream, listDirtyChunks, writeDirtyImage, type DirtyChunk, type ImageGeometry } from "./cache/dirty-image";
export { chunkKey, chunkPrefix, volumePrefix, parseChunkKey, GENERATIONS_PER_EPOCH, type ChunkKeyParts } from "./volume/chunk-layout";
export { identityCodec, type ChunkCodec, type ChunkContext } from "./volume/chunk-codec";
export { ChunkStore, type ChunkStoreOptions } from "./volume/chunk-store";
export { ChunkBuffers } from "./volume/chunk-buffers";
export { BufferPoolMisuse, type BufferPool, type BufferPoolOptions } from "./util/buffer-pool";
export { deleteVolumeObjects } from "./volume/delete-volume-objects";
export * from "./codec/index";
export * from "./keys/index";
export * from "./format/index";
export {
  CountingObjectStore,
  newStoreCounters,
  STORE_ERROR_CLASSES,
  STORE_OPERATIONS,
  type OperationCounters,
  type StoreCounters,
  type StoreErrorClass,
  type StoreOperation,
} from "./object-store/counting-store";
export { RetryingObjectStore, isTransientError, type RetryingObjectStoreOptions, type RetryEvent } from "./object-store/retrying-store";
export { BACKGROUND_TIMER, sleepOn, systemClock, type Clock, type ClockTimer } from "./util/clock";
export { SnapshotDevice, snapshotCapabilities, type SnapshotChunk, type SnapshotDeviceOptions } from "./snapshot/snapshot-device";
export type { ChunkOwners } from "./volume/chunk-store";
