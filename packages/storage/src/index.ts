export * from "./object-store/object-store";
export * from "./block-device";
export * from "./chunk-index";
export * from "./errors";
export { MemoryObjectStore } from "./object-store/memory-store";
export { DirectoryObjectStore, type DirectoryObjectStoreOptions } from "./object-store/directory-store";
export { S3ObjectStore, type S3ObjectStoreOptions } from "./object-store/s3-store";
export { compareKeys } from "./object-store/object-store-helpers";
