import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadClientConfig, loadGatewayConfig } from "./env";

describe("loadGatewayConfig", () => {
  it("defaults to the embedded setup on loopback", () => {
    const config = loadGatewayConfig({});
    expect(config.nbd).toEqual({
      host: "127.0.0.1",
      port: 10809,
      publicHost: "127.0.0.1",
      tls: { mode: "optional" },
      limits: { maxConnections: 1024, maxConnectionsPerAddress: 128, maxConnectionsPerCredential: 32, idleTimeoutMs: 0 },
    });
    expect(config.web).toEqual({ host: "127.0.0.1", port: 3000 });
    expect(config.dataDir).toBe(path.resolve(".stratus"));
    expect(config.database).toEqual({ kind: "pglite", dataDir: path.resolve(".stratus/db") });
    expect(config.store).toEqual({ kind: "directory", root: path.resolve(".stratus/bucket") });
  });

  it.runIf(process.platform === "linux")("warns when started without the malloc settings (bare `stratus gateway`), not with them", () => {
    expect(loadGatewayConfig({}).warnings).toEqual([expect.stringContaining("GLIBC_TUNABLES is not set")]);
    expect(loadGatewayConfig({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2" }).warnings).toEqual([]);
  });

  it("serves /metrics only when STRATUS_METRICS_LISTEN is set: a bare port on loopback, a token optional", () => {
    const env = { GLIBC_TUNABLES: "glibc.malloc.arena_max=2" };
    expect(loadGatewayConfig(env).metrics).toBeUndefined();
    expect(loadGatewayConfig({ ...env, STRATUS_METRICS_LISTEN: "9464" }).metrics).toEqual({ host: "127.0.0.1", port: 9464, token: undefined });
    const token = "a-metrics-token-long-enough";
    expect(loadGatewayConfig({ ...env, STRATUS_METRICS_LISTEN: "[::1]:9100", STRATUS_METRICS_TOKEN: token }).metrics).toEqual({
      host: "::1",
      port: 9100,
      token,
    });
    const open = loadGatewayConfig({ ...env, STRATUS_METRICS_LISTEN: "0.0.0.0:9464" });
    expect(open.warnings).toEqual([expect.stringContaining("set STRATUS_METRICS_TOKEN")]);
    expect(loadGatewayConfig({ ...env, STRATUS_METRICS_LISTEN: "0.0.0.0:9464", STRATUS_METRICS_TOKEN: token }).warnings).toEqual([]);
    expect(() => loadGatewayConfig({ ...env, STRATUS_METRICS_LISTEN: "localhost:http" })).toThrow(/STRATUS_METRICS_LISTEN: must be PORT or HOST:PORT/);
    expect(() => loadGatewayConfig({ ...env, STRATUS_METRICS_TOKEN: token })).toThrow(/STRATUS_METRICS_TOKEN: set, but STRATUS_METRICS_LISTEN is not/);
    // The message about a short token never repeats it.
    expect(() => loadGatewayConfig({ ...env, STRATUS_METRICS_LISTEN: "9464", STRATUS_METRICS_TOKEN: "short-secret" })).toThrow(
      /^(?![\s\S]*short-secret)[\s\S]*at least 16/,
    );
  });

  it("stops within STRATUS_STOP_TIMEOUT (10 s unless set) and picks the log format by the terminal unless told", () => {
    expect(loadGatewayConfig({})).toMatchObject({ stopTimeoutMs: 10_000, logFormat: "auto" });
    expect(loadGatewayConfig({ STRATUS_STOP_TIMEOUT: "30s", STRATUS_LOG_FORMAT: "json" })).toMatchObject({ stopTimeoutMs: 30_000, logFormat: "json" });
    expect(() => loadGatewayConfig({ STRATUS_STOP_TIMEOUT: "soon", STRATUS_LOG_FORMAT: "xml" })).toThrow(
      /STRATUS_LOG_FORMAT: .*\n.*STRATUS_STOP_TIMEOUT: "soon" is not a duration/,
    );
  });

  it("uses PostgreSQL and S3 when configured", () => {
    const config = loadGatewayConfig({
      DATABASE_URL: "postgres://u:p@127.0.0.1:5432/db",
      STRATUS_S3_ENDPOINT: "http://127.0.0.1:9000",
      STRATUS_S3_BUCKET: "bucket",
      STRATUS_S3_ACCESS_KEY_ID: "id",
      STRATUS_S3_SECRET_ACCESS_KEY: "secret",
      STRATUS_S3_FORCE_PATH_STYLE: "false",
      STRATUS_DIRTY_LIMIT: "64M",
    });
    expect(config.database).toEqual({ kind: "postgres", url: "postgres://u:p@127.0.0.1:5432/db" });
    expect(config.store).toMatchObject({ kind: "s3", bucket: "bucket", forcePathStyle: false, region: "us-east-1" });
    expect(config.dirtyLimitBytes).toBe(64 * 2 ** 20);
  });

  it("names every wrong variable at once", () => {
    let error: unknown;
    try {
      loadGatewayConfig({ STRATUS_NBD_PORT: "70000", STRATUS_CACHE_SIZE: "lots", DATABASE_URL: "mysql://x" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/STRATUS_NBD_PORT/);
    expect(message).toMatch(/STRATUS_CACHE_SIZE: "lots" is not a size/);
    expect(message).toMatch(/DATABASE_URL: must be a postgres/);
  });

  it("reads the durability settings with their defaults", () => {
    const defaults = loadGatewayConfig({ STRATUS_DATA_DIR: "/tmp/a" });
    expect(defaults).toMatchObject({
      cacheSizeBytes: 20 * 2 ** 30,
      dirtyLimitBytes: 2 * 2 ** 30,
      volumeDirtyLimitBytes: 1.5 * 2 ** 30,
      commitIntervalMs: 30_000,
      commitIdleMs: 2_000,
      gcGraceMs: 600_000,
      redisUrl: undefined,
      masterKey: undefined,
      uploadConcurrency: 16,
    });
    expect(defaults.queuePrefix).toMatch(/^stratus-[0-9a-f]{12}$/);
    // A small cache gets a dirty limit of half of it rather than an error.
    expect(loadGatewayConfig({ STRATUS_CACHE_SIZE: "1G" }).dirtyLimitBytes).toBe(512 * 2 ** 20);
    expect(() => loadGatewayConfig({ STRATUS_CACHE_SIZE: "1G", STRATUS_DIRTY_LIMIT: "2G" })).toThrow(
      /STRATUS_CACHE_SIZE: must be at least STRATUS_DIRTY_LIMIT/,
    );
    expect(loadGatewayConfig({ STRATUS_DIRTY_LIMIT: "1G", STRATUS_VOLUME_DIRTY_LIMIT: "256M" }).volumeDirtyLimitBytes).toBe(256 * 2 ** 20);
    expect(() => loadGatewayConfig({ STRATUS_DIRTY_LIMIT: "1G", STRATUS_VOLUME_DIRTY_LIMIT: "2G" })).toThrow(
      /STRATUS_VOLUME_DIRTY_LIMIT: must not be more than STRATUS_DIRTY_LIMIT/,
    );
    expect(loadGatewayConfig({ STRATUS_DATA_DIR: "/tmp/b" }).queuePrefix).not.toBe(defaults.queuePrefix);
    const key = Buffer.alloc(32, 7);
    const set = loadGatewayConfig({
      STRATUS_CACHE_SIZE: "1G",
      STRATUS_COMMIT_INTERVAL: "250ms",
      STRATUS_GC_GRACE: "1h",
      REDIS_URL: "redis://127.0.0.1:6379/2",
      STRATUS_QUEUE_PREFIX: "mine",
      STRATUS_MASTER_KEY: key.toString("base64"),
    });
    expect(set).toMatchObject({
      cacheSizeBytes: 2 ** 30,
      commitIntervalMs: 250,
      commitIdleMs: 250,
      gcGraceMs: 3_600_000,
      redisUrl: "redis://127.0.0.1:6379/2",
      queuePrefix: "mine",
    });
    expect(set.masterKey).toEqual(key);
    expect(loadGatewayConfig({ STRATUS_COMMIT_IDLE: "500ms" }).commitIdleMs).toBe(500);
    expect(() => loadGatewayConfig({ STRATUS_COMMIT_INTERVAL: "1s", STRATUS_COMMIT_IDLE: "5s" })).toThrow(
      /STRATUS_COMMIT_IDLE: must not be longer than STRATUS_COMMIT_INTERVAL/,
    );
    expect(() => loadGatewayConfig({ STRATUS_COMMIT_IDLE: "10ms" })).toThrow(/STRATUS_COMMIT_IDLE: must be at least 100ms/);
  });

  it("refuses a bad master key without echoing it, and bad durations", () => {
    const bad = "c2hvcnQga2V5IHRoYXQgaXMgbm90IDMyIGJ5dGVz";
    let message = "";
    try {
      loadGatewayConfig({ STRATUS_MASTER_KEY: bad, STRATUS_GC_GRACE: "soon", REDIS_URL: "http://x" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/STRATUS_MASTER_KEY: must be 32 bytes in base64/);
    expect(message).toMatch(/STRATUS_GC_GRACE: "soon" is not a duration/);
    expect(message).toMatch(/REDIS_URL: must be a redis/);
    expect(message).not.toContain(bad);
  });

  it("requires TLS for NBD beyond loopback and refuses to serve a network without it", () => {
    expect(loadGatewayConfig({ STRATUS_NBD_HOST: "0.0.0.0", STRATUS_NBD_PUBLIC_HOST: "nbd.example.com" }).nbd).toMatchObject({
      host: "0.0.0.0",
      port: 10809,
      publicHost: "nbd.example.com",
      tls: { mode: "require" },
    });
    expect(loadGatewayConfig({ STRATUS_NBD_MAX_CONNECTIONS_PER_ADDRESS: "8", STRATUS_NBD_IDLE_TIMEOUT: "1h" }).nbd.limits).toMatchObject({
      maxConnectionsPerAddress: 8,
      idleTimeoutMs: 3_600_000,
    });
    for (const mode of ["off", "optional"]) {
      expect(() => loadGatewayConfig({ STRATUS_NBD_HOST: "10.1.2.3", STRATUS_NBD_TLS: mode })).toThrow(/not a loopback address; use require/);
    }
    expect(loadGatewayConfig({ STRATUS_NBD_TLS: "off" }).nbd.tls).toEqual({ mode: "off" });
    expect(() => loadGatewayConfig({ STRATUS_NBD_TLS: "maybe" })).toThrow(/STRATUS_NBD_TLS/);
  });

  it("takes a server certificate and key together", () => {
    expect(loadGatewayConfig({ STRATUS_NBD_TLS_CERT: "/etc/c.pem", STRATUS_NBD_TLS_KEY: "k.pem" }).nbd.tls).toEqual({
      mode: "optional",
      certFile: "/etc/c.pem",
      keyFile: path.resolve("k.pem"),
    });
    expect(() => loadGatewayConfig({ STRATUS_NBD_TLS_CERT: "/etc/c.pem" })).toThrow(/go together/);
  });

  it("wants the whole S3 configuration, and never echoes the secret", () => {
    expect(() => loadGatewayConfig({ STRATUS_S3_ENDPOINT: "http://127.0.0.1:9000", STRATUS_S3_SECRET_ACCESS_KEY: "hunter2hunter2" })).toThrow(
      /STRATUS_S3_BUCKET, STRATUS_S3_ACCESS_KEY_ID must be set too/,
    );
    try {
      loadGatewayConfig({ STRATUS_S3_ENDPOINT: "http://127.0.0.1:9000", STRATUS_S3_SECRET_ACCESS_KEY: "hunter2hunter2" });
    } catch (error) {
      expect((error as Error).message).not.toContain("hunter2hunter2");
    }
  });
});

describe("loadClientConfig", () => {
  it("finds the local server and its token file", () => {
    expect(loadClientConfig({ STRATUS_WEB_PORT: "4000", STRATUS_DATA_DIR: "/tmp/x" })).toEqual({
      url: "http://127.0.0.1:4000",
      token: undefined,
      tokenFile: "/tmp/x/cli-token",
      loopback: true,
      localNbd: { host: "127.0.0.1", port: 10809 },
    });
    expect(loadClientConfig({ STRATUS_URL: "https://stratus.example/", STRATUS_TOKEN: "t" })).toMatchObject({
      url: "https://stratus.example",
      loopback: false,
    });
    for (const url of ["http://localhost:3000", "http://127.0.0.5:80", "http://[::1]:3000"]) expect(loadClientConfig({ STRATUS_URL: url }).loopback).toBe(true);
  });

  it("refuses a plain-http STRATUS_URL to another machine unless --insecure, naming the variable", () => {
    for (const url of ["http://stratus.example", "http://10.1.2.3:3000", "http://127.0.0.1.evil.example", "http://[::2]"]) {
      expect(() => loadClientConfig({ STRATUS_URL: url, STRATUS_TOKEN: "t" })).toThrow(/STRATUS_URL .* is plain http to another machine.*--insecure/);
      expect(loadClientConfig({ STRATUS_URL: url, STRATUS_TOKEN: "t" }, { insecure: true })).toMatchObject({ loopback: false });
    }
    expect(() => loadClientConfig({ STRATUS_URL: "ftp://stratus.example" })).toThrow(/STRATUS_URL must be an http/);
    expect(() => loadClientConfig({ STRATUS_URL: "not a url" })).toThrow(/STRATUS_URL must be an http/);
  });
});
