export { startS3TestServer, type S3TestServer, type S3TestServerOptions } from "./s3-test-server";
export { describeObjectStoreSuite, type ObjectStoreFactory } from "./object-store-suite";
