import { newId } from "@stratus/db";
import { StorageError } from "@stratus/storage";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "@stratus/storage/testing";
import { deletePrefix, dumpPrefix, TEST_REDIS, uniqueQueuePrefix } from "../testing/test-redis";
import { BullMqChunkUploader, type UploadTarget } from "./chunk-uploader";
import { JobQueues } from "@stratus/control/jobs";

const logger = pino({ level: "silent" });
const VOLUME = newId("volume");
const OTHER = newId("volume");

describe("the BullMQ chunk uploader", () => {
  let prefix: string;
  let queues: JobQueues;
  let uploader: BullMqChunkUploader | undefined;
  beforeEach(() => {
    prefix = uniqueQueuePrefix();
    queues = new JobQueues({ connection: TEST_REDIS, prefix });
  });
  afterEach(async () => {
    await uploader?.closeWorker();
    await queues.close();
    await deletePrefix(prefix);
  });

  function start(targets: Map<string, UploadTarget>): BullMqChunkUploader {
    uploader = new BullMqChunkUploader({ queues, resolveVolume: (id) => targets.get(id), concurrency: 4, logger });
    uploader.start();
    return uploader;
  }

  it("runs each upload as a job, retries failures with backoff, and resolves with the stored size", async () => {
    const calls: string[] = [];
    const failuresLeft = new Map([[3, 2]]); // chunk 3 fails twice (a store outage), then works
    const target: UploadTarget = {
      async uploadFrozenChunk(commitId, index, generation) {
        calls.push(`${commitId}/${index}/${generation}`);
        const left = failuresLeft.get(index) ?? 0;
        if (left > 0) {
          failuresLeft.set(index, left - 1);
          throw new StorageError("EIO", "503 SlowDown");
        }
        return { storedSize: 1000 + index };
      },
    };
    const up = start(new Map([[VOLUME, target]]));
    const results = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((index) => up.upload({ volumeId: VOLUME, commitId: "c1", index, generation: 65536 })));
    expect(results.map((r) => r.storedSize)).toEqual([1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007]);
    expect(calls.filter((c) => c.startsWith("c1/3/"))).toHaveLength(3);
    expect(calls).toHaveLength(10);
    expect(up.pending).toBe(0);
  });

  it("queues the pending uploads again after Redis lost them (a private Redis restarted empty)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const started = new Set<number>();
    const target: UploadTarget = {
      async uploadFrozenChunk(_commitId, index) {
        started.add(index);
        await gate;
        return { storedSize: 2000 + index };
      },
    };
    const up = start(new Map([[VOLUME, target]]));
    const uploads = [0, 1, 2, 3, 4, 5, 6, 7].map((index) => up.upload({ volumeId: VOLUME, commitId: "c2", index, generation: 65536 }));
    await waitFor(() => started.size === 4, "four uploads running (the worker's concurrency)", { intervalMs: 10 });
    await deletePrefix(prefix); // every job of this queue gone, as after a restart of a Redis without persistence
    up.requeuePending();
    release();
    expect((await Promise.all(uploads)).map((r) => r.storedSize)).toEqual([2000, 2001, 2002, 2003, 2004, 2005, 2006, 2007]);
    expect(up.pending).toBe(0);
  });

  it("rejects the caller when the commit is gone, and completes the job as skipped", async () => {
    const target: UploadTarget = {
      uploadFrozenChunk: () => Promise.reject(new StorageError("ENOTFOUND", "commit c9 is gone")),
    };
    const up = start(new Map([[VOLUME, target]]));
    await expect(up.upload({ volumeId: VOLUME, commitId: "c9", index: 1, generation: 2 })).rejects.toThrow(/commit c9 is gone/);
  });

  it("completes a leftover job of a volume not open here as skipped", async () => {
    const jobId = await queues.addUpload({ volumeId: OTHER, commitId: "old", index: 0, generation: 1 });
    start(new Map());
    const job = await queues.upload.getJob(jobId);
    expect(job).toBeDefined();
    // removeOnComplete drops it once done: wait for that.
    for (let i = 0; i < 400 && (await queues.upload.getJob(jobId)); i++) await new Promise((r) => setTimeout(r, 10));
    expect(await queues.upload.getJob(jobId)).toBeUndefined();
  });

  it("keeps only names in Redis (no chunk data), and refuses malformed payloads before they reach it", async () => {
    let release: (() => void) | undefined;
    const target: UploadTarget = {
      uploadFrozenChunk: () => new Promise((resolve) => (release = () => resolve({ storedSize: 1 }))),
    };
    const up = start(new Map([[VOLUME, target]]));
    const done = up.upload({ volumeId: VOLUME, commitId: "c2", index: 7, generation: 65537 });
    let jobHash: Record<string, string> | undefined;
    for (let i = 0; i < 200 && !jobHash; i++) {
      const dump = await dumpPrefix(prefix);
      const hash = dump.find((v) => v.startsWith("{") && v.includes("c2") && JSON.parse(v).data);
      if (hash) jobHash = JSON.parse(hash) as Record<string, string>;
    }
    expect(JSON.parse(jobHash!.data!)).toEqual({ volumeId: VOLUME, commitId: "c2", index: 7, generation: 65537 });
    await expect(up.upload({ volumeId: "not-a-volume", commitId: "c2", index: 0, generation: 0 })).rejects.toThrow(/not a volume id/);
    await expect(queues.addUpload({ volumeId: VOLUME, commitId: "c2", index: -1, generation: 0 })).rejects.toThrow();
    while (!release) await new Promise((r) => setTimeout(r, 5));
    release();
    expect(await done).toEqual({ storedSize: 1 });
  });

  it("after the worker closes, uploads run directly in the caller", async () => {
    const target: UploadTarget = { uploadFrozenChunk: async (_c, index) => ({ storedSize: index }) };
    const up = start(new Map([[VOLUME, target]]));
    await up.closeWorker();
    expect(await up.upload({ volumeId: VOLUME, commitId: "c3", index: 42, generation: 1 })).toEqual({ storedSize: 42 });
    uploader = undefined;
  });
});
