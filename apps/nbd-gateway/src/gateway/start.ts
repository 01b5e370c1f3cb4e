/**
 * The gateway process: database, object store, master key, Redis and the BullMQ queues, the upload
 * worker, volume engines, gc/delete workers, NBD server and the control API, started in that order
 * and stopped in reverse — so on shutdown the NBD clients go first, then the job workers (running jobs
 * finish), then the engines flush and close (uploads then run in-process), then Redis and the rest.
 * In the embedded default all of it lives in one process, because an embedded PGlite database
 * belongs to exactly one process.
 */
import { createHash, randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import {
  createMetricsServer,
  JobQueues,
  uploadQueuePrefix,
  loadAuthSecret,
  loadMasterKey,
  openObjectStore,
  readUnlockGrant,
  rootCause,
  StartupError,
  volumeLockedChannel,
  type Runtime,
} from "@stratus/control";
import { DbError, ensureLocalAdmin, openDatabase, type Database } from "@stratus/db";
import { CodecPool } from "@stratus/storage/codec-pool";
import { CacheBudget, CountingObjectStore, registerDormantCaches, RetryingObjectStore, type ScryptCost } from "@stratus/storage";
import type { ConnectionOptions } from "bullmq";
import { Redis } from "ioredis";
import type { Server } from "node:http";
import type { GatewayConfig } from "../config/env";
import { ensureCliToken } from "../control/cli-token";
import { HandoffCoordinator } from "../engine/handoff-coordinator";
import { LeaseKeeper } from "../engine/lease-keeper";
import { OrphanRecords } from "../engine/orphan-records";
import { VolumeEngines } from "../engine/volume-engines";
import { BullMqChunkUploader } from "../jobs/chunk-uploader";
import { JobWorkers } from "../jobs/job-workers";
import { ImportWorker } from "../jobs/import-volume";
import { AttachActivity } from "./attach-activity";
import { loadGatewayIdentity } from "./gateway-identity";
import { makeDataDirPrivate } from "./private-data-dir";
import { KeyRing } from "../keys/key-ring";
import { LivePublisher } from "../live/live-publisher";
import { openRedis } from "../redis/redis-server";
import type { Logger } from "../logger";
import { createNbdServer } from "../server/nbd-server";
import { nbdTlsOptions } from "../tls/nbd-tls";
import { createEmbeddedWeb } from "./web-server";
import { ShutdownSteps } from "./shutdown-steps";
import { stopGateway, type StopOutcome } from "./stop";
import { throttledErrorLog } from "../redis/error-log";
import { newStoreRetries, retriedOperation } from "../metrics/store-retries";
import { VolumeMeters } from "../metrics/volume-meters";

export interface RunningGateway {
  nbdUrl: string;
  /** http://host:port/metrics when STRATUS_METRICS_LISTEN is set. */
  metricsUrl?: string;
  /** The dashboard and API; undefined with --no-web. */
  webUrl: string | undefined;
  /** The same runtime the web app uses (tests drive verbs through it). */
  runtime: Runtime;
  /** The local admin user (the CLI token's owner). */
  localAdminId: string;
  /**
   * Stops serving, makes every acknowledged write durable in the local cache, tries the cloud commit
   * for at most `commitTimeoutMs` (default STRATUS_STOP_TIMEOUT), then releases everything. Never
   * waits on a Redis that is gone.
   */
  stop(options?: StopOptions): Promise<StopOutcome>;
}

export interface StopOptions {
  commitTimeoutMs?: number;
}

export interface StartOptions {
  /** scrypt cost of new passphrase slots (tests lower it; production uses the storage default). */
  kdf?: ScryptCost;
  /** Serve the dashboard and API (Next.js) on the web port; false: NBD and workers only (`--no-web`). */
  web?: boolean;
  /** Live-state publish and sample intervals (tests shorten them). */
  publishIntervalMs?: number;
  sampleIntervalMs?: number;
}

export async function startGateway(config: GatewayConfig, logger: Logger, startOptions: StartOptions = {}): Promise<RunningGateway> {
  // The cache holds decrypted data: 0700 / 0600 at every start.
  await makeDataDirPrivate(config.dataDir, `${config.dataDir}/cache`);

  const steps = new ShutdownSteps(logger);

  try {
    const database = await openDatabaseOrExplain(config);
    steps.add("database", () => database.close());
    // Every attempt is counted for /metrics (CountingObjectStore), retries by the retry layer.
    const rawStore = new CountingObjectStore(await openObjectStore(config.store));
    const storeRetries = newStoreRetries();
    // Transient failures (5xx, SlowDown, resets, stalls) are retried below everything else.
    const storeLogger = logger.child({ part: "store" });
    const store = new RetryingObjectStore(rawStore, {
      onRetry: (event) => {
        const operation = retriedOperation(event.operation);
        if (operation !== undefined) storeRetries[operation]++;
        storeLogger.debug({ operation: event.operation, attempt: event.attempt, delayMs: event.delayMs, err: event.error }, "store retry");
      },
    });
    steps.add("object store", () => store.close());
    const owner = await ensureLocalAdmin(database.db);
    const masterKey = await loadMasterKey({ configured: config.masterKey, dataDir: config.dataDir }, logger);

    const redis = await openRedis(config, logger);
    steps.add("redis", () => redis.stop());
    const client = new Redis({ ...redis.options, maxRetriesPerRequest: null });
    client.on("error", throttledErrorLog(logger, "Redis connection error (retrying)"));
    steps.add("redis client", () => client.disconnect());
    // Unlock grants left by unlockVolume (in this process or a scaled-out web process).
    const keys = new KeyRing(masterKey, (volumeId) => readUnlockGrant(client, config.queuePrefix, masterKey.key, volumeId));
    const queues = new JobQueues(
      {
        connection: { ...redis.options, maxRetriesPerRequest: null } as ConnectionOptions,
        prefix: config.queuePrefix,
        // Gateways share the prefix; each keeps its upload jobs, whose chunks only its engines hold.
        uploadPrefix: uploadQueuePrefix(config.queuePrefix, createHash("sha256").update(`${hostname()}:${config.dataDir}`).digest("hex").slice(0, 12)),
      },
      throttledErrorLog(logger, "job queue error"),
    );
    steps.add("queues", () => queues.close());

    let engines: VolumeEngines | undefined = undefined;
    const uploader = new BullMqChunkUploader({
      queues,
      resolveVolume: (volumeId) => engines?.volumeById(volumeId),
      concurrency: config.uploadConcurrency,
      logger: logger.child({ part: "upload" }),
    });
    let workers: JobWorkers | undefined = undefined;
    let publisher: LivePublisher | undefined = undefined;
    const cacheDir = `${config.dataDir}/cache`;
    const cacheBudget = new CacheBudget({
      targetBytes: config.cacheSizeBytes,
      dirtyLimitBytes: config.dirtyLimitBytes,
      volumeDirtyLimitBytes: config.volumeDirtyLimitBytes,
    });
    // Caches of volumes not open yet count against the target; those with uncommitted data get committed below.
    const leftovers = registerDormantCaches(cacheDir, cacheBudget);
    // Closed after the engines (cleanups run in reverse): their final commits still seal through it.
    const codecPool = config.codecThreads > 0 ? new CodecPool({ size: config.codecThreads }) : undefined;
    if (codecPool !== undefined) steps.add("codec threads", () => codecPool.close());
    const identity = await loadGatewayIdentity(config.gatewayId, config.dataDir);
    const orphanRecords = new OrphanRecords({ db: database.db, gatewayId: identity.gatewayId, cacheDir, logger: logger.child({ part: "orphans" }) });
    let fence: (volumeId: string, token: number, taken: boolean) => void = () => {};
    let handoffs: HandoffCoordinator | undefined = undefined;
    const leases = new LeaseKeeper({
      db: database.db,
      identity,
      ttlMs: config.leaseTtlMs,
      heldWaitMs: config.handoffTimeoutMs,
      askHolder: (volumeId, lease, requester) => handoffs?.ask(volumeId, lease, requester) ?? Promise.resolve(undefined),
      logger: logger.child({ part: "leases" }),
      onLost: (volumeId, token, taken) => fence(volumeId, token, taken),
    });
    // Only with /metrics on: the scrapes are what forget the meters of volumes closed long ago.
    const meters = config.metrics === undefined ? undefined : new VolumeMeters();
    const attachActivity = new AttachActivity({ db: database.db, logger: logger.child({ part: "activity" }) });
    steps.add("attach activity", () => attachActivity.settled());
    const openEngines = new VolumeEngines({
      meters,
      leases,
      handoffTimeoutMs: config.handoffTimeoutMs,
      database,
      store,
      logger,
      keys,
      cacheDir,
      cacheBudget,
      commitIntervalMs: config.commitIntervalMs,
      commitIdleMs: config.commitIdleMs,
      writeBehind: config.writeBehind,
      uploader,
      uploadConcurrency: config.uploadConcurrency,
      codecPool,
      onOrphaned: (moved) => void orphanRecords.record(moved),
      onConnection: (change, connection) => attachActivity.connection(change, connection),
      onClosed: (volumeId) => {
        // The last commit's garbage is still in its grace period now: collect it once that ends
        // (nothing else would while the volume stays closed).
        void workers?.scheduleGc(volumeId, config.gcGraceMs + 1_000);
        publisher?.poke();
      },
    });
    engines = openEngines;
    fence = (volumeId, token, taken) =>
      taken
        ? openEngines.fence(volumeId, token, "another holder took its lease")
        : openEngines.fence(volumeId, token, "its lease expired unrenewed", { keepCache: true });
    // Stopped after the engines closed (cleanups run in reverse): their leases are renewed until then.
    steps.add("lease heartbeat", () => leases.stop());
    leases.start();
    steps.add("engines", () => openEngines.closeAll());
    uploader.start();
    steps.add("upload worker", () => uploader.closeWorker());
    redis.onRestart(() => {
      logger.warn({ pending: uploader.pending }, "Redis was restarted empty: queueing the pending uploads again");
      uploader.requeuePending();
    });
    const jobWorkers = new JobWorkers({
      queues,
      db: database.db,
      store,
      graceMs: config.gcGraceMs,
      openVolumeIds: () => openEngines.openVolumeIds(),
      dropCache: (volumeId) => openEngines.dropCache(volumeId, { deleted: true }),
      logger: logger.child({ part: "jobs" }),
    });
    workers = jobWorkers;
    jobWorkers.start();
    if (leftovers.length > 0) {
      logger.info({ volumes: leftovers.length }, "the cache holds uncommitted data from the previous run: committing it");
      openEngines.commitLeftovers(leftovers).catch((error: unknown) => logger.error({ err: error }, "committing cached data failed"));
    }
    steps.add("job workers", () => jobWorkers.close());
    // URL and S3 imports: closed before the engines, so a stopped import lets its volume go first.
    const importWorker = new ImportWorker({
      queues,
      db: database.db,
      redis: client,
      prefix: config.queuePrefix,
      masterKey: masterKey.key,
      engines: openEngines,
      stagingDir: `${config.dataDir}/imports`,
      logger: logger.child({ part: "import" }),
    });
    importWorker.start();
    steps.add("import worker", () => importWorker.close());
    // A lock (dashboard, REST, any web process) closes the volume here and drops its cache.
    const lockEvents = client.duplicate();
    lockEvents.on("error", throttledErrorLog(logger, "Redis subscriber error (retrying)"));
    steps.add("lock events", async () => lockEvents.disconnect());
    lockEvents.on("message", (_channel: string, volumeId: string) => {
      openEngines.lockVolume(volumeId).catch((error: unknown) => logger.error({ err: error, volumeId }, "closing a locked volume failed"));
    });
    await lockEvents.subscribe(volumeLockedChannel(config.queuePrefix));
    // Handoff requests and force-detach notices between gateways (and from the web's detach).
    const leaseEvents = client.duplicate();
    leaseEvents.on("error", throttledErrorLog(logger, "Redis subscriber error (retrying)"));
    steps.add("lease events", async () => leaseEvents.disconnect());
    const coordinator = new HandoffCoordinator({
      publisher: client,
      subscriber: leaseEvents,
      prefix: config.queuePrefix,
      identity,
      engines: openEngines,
      heldToken: (volumeId) => leases.heldTokens().get(volumeId),
      timeoutMs: config.handoffTimeoutMs,
      logger: logger.child({ part: "handoff" }),
    });
    await coordinator.start();
    handoffs = coordinator;
    // A discard (dashboard, REST, CLI) deletes the set's folder here; the start reconciles rows and folders.
    steps.add("orphan events", await orphanRecords.listen(client, config.queuePrefix));
    orphanRecords.reconcile().catch((error: unknown) => logger.warn({ err: error }, "could not reconcile orphan sets with the database; the next start does"));

    // Plaintext (loopback only) serves the local admin's volumes; TLS clients their device credential's.
    const nbd = createNbdServer({
      registry: openEngines.forScope({ ownerId: owner.id, volumeIds: null, client: "local", deviceCredentialId: null }),
      tls: await nbdTlsOptions(config, { database, masterKey }, openEngines, logger.child({ part: "tls" })),
      ...config.nbd.limits,
      logger: logger.child({ part: "nbd" }),
    });
    const nbdPort = await listenOrExplain("NBD", config.nbd.host, config.nbd.port, (port, host) => nbd.listen(port, host).then((address) => address.port));
    steps.add("nbd", () => nbd.close());
    const nbdUrl = `nbd://${hostForUrl(config.nbd.host)}:${nbdPort}`;

    const runtime: Runtime = {
      database,
      store,
      queues,
      masterKey,
      redis: client,
      config: {
        prefix: config.queuePrefix,
        gcGraceMs: config.gcGraceMs,
        handoffTimeoutMs: config.handoffTimeoutMs,
        nbd: { host: config.nbd.publicHost, port: nbdPort, tls: config.nbd.tls.mode === "require" },
        kdf: startOptions.kdf,
        embedded: true,
      },
      logger: logger.child({ part: "control" }),
      localGateway: { gatewayId: identity.gatewayId, cacheDir },
    };
    await ensureCliToken(config.dataDir, runtime, owner.id);

    const livePublisher = new LivePublisher({
      redis: client,
      prefix: config.queuePrefix,
      gatewayId: `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`,
      db: database.db,
      openEngines: () => openEngines.openEngines(),
      logger: logger.child({ part: "live" }),
      publishIntervalMs: startOptions.publishIntervalMs,
      sampleIntervalMs: startOptions.sampleIntervalMs,
    });
    publisher = livePublisher;
    livePublisher.start();
    steps.add("live state", () => livePublisher.stop());

    let metricsUrl: string | undefined;
    if (config.metrics !== undefined && meters !== undefined) {
      const { host, port, token } = config.metrics;
      // prom-client loads only with /metrics on.
      const { GatewayMetrics } = await import("../metrics/gateway-metrics");
      const metrics = new GatewayMetrics({
        gatewayId: identity.gatewayId,
        meters,
        openEngines: () => openEngines.openEngines(),
        openVolumeIds: () => openEngines.openVolumeIds(),
        store: { counters: rawStore.counters, retries: storeRetries },
        codecPool,
      });
      const metricsLogger = logger.child({ part: "metrics" });
      const server = createMetricsServer({ metrics, token, onError: (error) => metricsLogger.warn({ err: error }, "collecting metrics failed") });
      const metricsPort = await listenOrExplain("metrics", host, port, (p, h) => server.listen(p, h));
      steps.add("metrics", () => server.close());
      metricsUrl = `http://${hostForUrl(host)}:${metricsPort}/metrics`;
    }

    let webUrl: string | undefined;
    if (startOptions.web !== false) {
      const web = await createEmbeddedWeb({
        runtime,
        authSecret: await loadAuthSecret(config.authSecret, config.dataDir),
        host: config.web.host,
        port: config.web.port,
      });
      const webPort = await listenOrExplain("web", config.web.host, config.web.port, (port, host) => listenHttp(web.server, port, host));
      steps.add("web", () => web.close());
      webUrl = `http://${hostForUrl(config.web.host)}:${webPort}`;
    }

    logger.info(
      {
        nbdUrl,
        webUrl,
        metricsUrl,
        store: config.store.kind,
        database: database.kind,
        redis: redis.where,
        dataDir: config.dataDir,
        gatewayId: identity.gatewayId,
      },
      "stratus ready",
    );
    if (webUrl) logger.info({ webUrl }, `dashboard: ${webUrl}`);
    for (const warning of config.warnings ?? []) logger.warn(warning);
    const stop = (options: StopOptions = {}) =>
      stopGateway({
        steps,
        engines: openEngines,
        jobWorkers,
        uploader,
        redis: client,
        commitTimeoutMs: options.commitTimeoutMs ?? config.stopTimeoutMs,
        logger,
      });
    return { nbdUrl, webUrl, metricsUrl, runtime, localAdminId: owner.id, stop };
  } catch (error) {
    await steps.runRest();
    throw error;
  }
}

async function openDatabaseOrExplain(config: GatewayConfig): Promise<Database> {
  try {
    return await openDatabase(config.database);
  } catch (error) {
    const where = config.database.kind === "pglite" ? `embedded database in ${config.database.dataDir}` : "PostgreSQL (DATABASE_URL)";
    // The database package's own messages already name the target (without its password).
    const reason = error instanceof DbError ? error.message : rootCause(error);
    throw new StartupError(`cannot open the ${where}: ${reason}`, { cause: error });
  }
}

async function listenOrExplain(what: string, host: string, port: number, listen: (port: number, host: string) => Promise<number>): Promise<number> {
  try {
    return await listen(port, host);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const variable = what === "NBD" ? "STRATUS_NBD_PORT" : what === "metrics" ? "STRATUS_METRICS_LISTEN" : "STRATUS_WEB_PORT";
    if (code === "EADDRINUSE") {
      throw new StartupError(`${what} port ${host}:${port} is already in use: stop what holds it or set ${variable}`, { cause: error });
    }
    if (code === "EADDRNOTAVAIL") {
      throw new StartupError(`${what} address ${host} is not an address of this machine`, { cause: error });
    }
    throw new StartupError(`cannot listen for ${what} on ${host}:${port}: ${rootCause(error)}`, { cause: error });
  }
}

function listenHttp(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
