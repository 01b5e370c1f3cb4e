// Runs s3rver in a child process for tests (see s3-test-server.ts), with one fix to the server:
// a multi-object delete that empties a directory removes it from several concurrent deletes at
// once, and s3rver 3.7's cleanup then fails with ENOENT and answers 500. Real S3 has no
// directories, so the fix makes the cleanup tolerate a directory that is already gone.
// It also counts the requests it answers, grouped by the first segment of the object key ("vol" for
// Stratus's objects, the bench's "s3b-1" for s3backer's), and tells them to its parent over IPC:
// the bench counts requests without a proxy copying every byte on the same cores.
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

/** Requests answered so far: group -> { PUT, GET, DELETE, POST, HEAD, OTHER, bodyBytesIn, bodyBytesOut }. */
const counts = Object.create(null);
const METHODS = new Set(["PUT", "GET", "DELETE", "POST", "HEAD"]);

function countRequest(request, response) {
  // Path-style: /bucket/first/rest...; a bucket-level request (list, multi-object delete) has no key.
  const key = request.url.split("?")[0].split("/").slice(2);
  // Keys' first segments are compared as sent (percent-encoded): the bench's are plain ASCII, and a
  // malformed escape must not throw in this listener and take the server down.
  const group = key.length > 0 && key[0] !== "" ? key[0] : "(bucket)";
  const entry = (counts[group] ??= { PUT: 0, GET: 0, DELETE: 0, POST: 0, HEAD: 0, OTHER: 0, bodyBytesIn: 0, bodyBytesOut: 0 });
  entry[METHODS.has(request.method) ? request.method : "OTHER"] += 1;
  entry.bodyBytesIn += Number(request.headers["content-length"] ?? 0);
  response.once("finish", () => {
    if (request.method !== "HEAD") entry.bodyBytesOut += Number(response.getHeader("content-length") ?? 0);
  });
}

process.on("message", (message) => {
  if (message?.type === "counts") process.send({ type: "counts", id: message.id, counts });
});

const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({
  directory,
  address: "127.0.0.1",
  port: 0,
  silent: true,
  vhostBuckets: false,
  configureBuckets: [{ name: bucket, configs: [] }],
});
server
  .run()
  .then(({ address, port }) => {
    server.httpServer.on("request", countRequest);
    console.log(`listening on ${address}:${port}`);
  })
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
