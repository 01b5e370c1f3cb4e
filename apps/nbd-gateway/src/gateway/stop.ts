/**
 * The gateway's bounded stop, in phases: stop serving (NBD requests in flight finish), make every
 * acknowledged write durable in the local cache, try the cloud commit until a deadline, then release
 * the rest. What the commit did not reach stays in the cache, fsynced, exactly as after a crash: the
 * next start commits it. Nothing here waits on Redis once it has stopped answering.
 */
import type { Redis } from "ioredis";
import type { VolumeEngines } from "../engine/volume-engines";
import type { BullMqChunkUploader } from "../jobs/chunk-uploader";
import type { JobWorkers } from "../jobs/job-workers";
import type { Logger } from "../logger";
import { settlesWithin, type ShutdownSteps } from "./shutdown-steps";

export interface StopOutcome {
  /** Every open volume's final commit reached the bucket. */
  committed: boolean;
  /** Volumes whose uncommitted data stays in the cache for the next start. */
  uncommittedVolumes: number;
}

export interface StopParts {
  steps: ShutdownSteps;
  engines: VolumeEngines;
  jobWorkers: JobWorkers;
  uploader: BullMqChunkUploader;
  redis: Redis;
  /** How long serving out and committing may take together. */
  commitTimeoutMs: number;
  logger: Logger;
}

/** How long a PING may take before Redis counts as gone. */
const REDIS_ANSWER_MS = 1_000;
/** Each step that only releases something (a socket, a child process, the database) gets this long. */
const RELEASE_STEP_MS = 2_000;

export async function stopGateway(parts: StopParts): Promise<StopOutcome> {
  const { steps, engines, logger } = parts;
  const deadline = Date.now() + parts.commitTimeoutMs;
  const left = () => Math.max(0, deadline - Date.now());

  // Without Redis no queued upload would ever run: from now on every upload runs in this process,
  // including those of a volume whose last client is leaving while the NBD server stops.
  const redisGone = !(await answers(parts.redis, REDIS_ANSWER_MS));
  if (redisGone) {
    logger.warn("Redis is not answering: the final commits upload from this process");
    void parts.uploader.closeWorker({ redisGone });
  }
  const releaseBound = redisGone ? 0 : RELEASE_STEP_MS;

  await steps.run("web", RELEASE_STEP_MS);
  await steps.run("live state", releaseBound);
  // A request in flight may itself wait on uploads (a full dirty budget): bounded like the commit.
  await steps.run("nbd", Math.max(left(), RELEASE_STEP_MS));
  // Running imports stop and let their volumes go before the engines close (their volumes are deleted).
  await steps.run("import worker", Math.max(left(), RELEASE_STEP_MS));
  try {
    await engines.syncAll();
  } catch (error) {
    logger.error({ err: error }, "syncing the local cache failed");
  }

  const committing = (async () => {
    await parts.jobWorkers.close({ redisGone });
    await parts.uploader.closeWorker({ redisGone });
    await engines.closeAll();
  })();
  const failed = committing.then(
    () => false,
    (error: unknown) => {
      logger.error({ err: error }, "the final commit failed");
      return true;
    },
  );
  const finished = await settlesWithin(committing, left());
  steps.skip("job workers", "upload worker", "engines");
  const committed = finished && !(await failed);
  let uncommittedVolumes = 0;
  if (!committed) {
    uncommittedVolumes = engines.abandonAll();
    logger.warn(
      { volumes: uncommittedVolumes, timeoutMs: parts.commitTimeoutMs },
      `stopping before the cloud commit finished: ${uncommittedVolumes} volume(s) keep uncommitted data in the local cache (synced); the next start commits it`,
    );
  }
  await steps.run("queues", releaseBound);
  await steps.runRest(RELEASE_STEP_MS);
  return { committed, uncommittedVolumes };
}

async function answers(redis: Redis, ms: number): Promise<boolean> {
  if (redis.status !== "ready") return false;
  const pong = redis.ping().then(
    (reply) => reply === "PONG",
    () => false,
  );
  return (await settlesWithin(pong, ms)) && (await pong);
}
