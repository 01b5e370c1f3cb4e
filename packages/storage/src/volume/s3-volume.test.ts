import { S3ObjectStore } from "../object-store/s3-store";
import { startS3TestServer, type S3TestServer } from "../testing/s3-test-server";
import { describeVolumeSuite } from "../testing/volume-suite";

let server: S3TestServer | undefined;

describeVolumeSuite("S3 store (s3rver)", {
  async create() {
    server = await startS3TestServer();
    return new S3ObjectStore({
      endpoint: server.endpoint,
      region: server.region,
      bucket: server.bucket,
      forcePathStyle: true,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
  },
  async cleanup() {
    await server?.stop();
  },
});
