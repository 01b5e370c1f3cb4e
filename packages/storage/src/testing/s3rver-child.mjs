// Runs s3rver in a child process for tests (see s3-test-server.ts), with one fix to the server:
// a multi-object delete that empties a directory removes it from several concurrent deletes at
// once, and s3rver 3.7's cleanup then fails with ENOENT and answers 500. Real S3 has no
// directories, so the fix makes the cleanup tolerate a directory that is already gone.
// Usage: node s3rver-child.mjs <directory> <bucket>; prints "listening on 127.0.0.1:PORT".
import fs from "node:fs/promises";
import path from "node:path";
import S3rver from "s3rver";
import FilesystemStore from "s3rver/lib/stores/filesystem.js";

FilesystemStore.prototype.deleteObject = async function deleteObject(bucket, key) {
  await Promise.all(
    ["object", "object.md5", "metadata.json"].map((type) =>
      fs.unlink(this.getResourcePath(bucket, key, type)).catch((err) => {
        if (err.code !== "ENOENT") throw err;
      }),
    ),
  );
  const bucketPath = this.getBucketPath(bucket);
  const parts = key.split("/");
  parts.pop(); // the last part is embedded in the file names, not a directory
  for (; parts.length > 0; parts.pop()) {
    try {
      await fs.rmdir(path.join(bucketPath, ...parts));
    } catch {
      return; // not empty, or already removed by a concurrent delete
    }
  }
};

const [directory, bucket] = process.argv.slice(2);
new S3rver({
  directory,
  address: "127.0.0.1",
  port: 0,
  silent: true,
  vhostBuckets: false,
  configureBuckets: [{ name: bucket, configs: [] }],
})
  .run()
  .then(({ address, port }) => console.log(`listening on ${address}:${port}`))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
