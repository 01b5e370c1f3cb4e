export { startS3TestServer, type S3RequestCounts, type S3TestServer, type S3TestServerOptions } from "./s3-test-server";
export { MemoryChunkIndex } from "./memory-chunk-index";
export { FaultyObjectStore, type StoreOperation } from "./faulty-object-store";
export { waitFor, type WaitForOptions } from "./wait-for";
export { ManualClock } from "./manual-clock";
export { seededRandom, seededBytes } from "./seeded-random";
export { describeObjectStoreSuite, type ObjectStoreFactory } from "./object-store-suite";
export { describeVolumeSuite, type VolumeSuiteStore } from "./volume-suite";
export { startFaultProxy, type FaultProxy, type FaultProxyOptions, type FaultMode, type FaultKind, type FaultProxyStats, type HttpMethod } from "./fault-proxy";
