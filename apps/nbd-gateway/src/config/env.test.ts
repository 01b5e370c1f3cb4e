import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadClientConfig, loadGatewayConfig } from "./env";

describe("loadGatewayConfig", () => {
  it("defaults to the embedded setup on loopback", () => {
    const config = loadGatewayConfig({});
    expect(config.nbd).toEqual({ host: "127.0.0.1", port: 10809 });
    expect(config.web).toEqual({ host: "127.0.0.1", port: 3000 });
    expect(config.dataDir).toBe(path.resolve(".stratus"));
    expect(config.database).toEqual({ kind: "pglite", dataDir: path.resolve(".stratus/db") });
    expect(config.store).toEqual({ kind: "directory", root: path.resolve(".stratus/bucket") });
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
      loadGatewayConfig({ STRATUS_NBD_PORT: "70000", STRATUS_MEMORY_CACHE: "lots", DATABASE_URL: "mysql://x" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/STRATUS_NBD_PORT/);
    expect(message).toMatch(/STRATUS_MEMORY_CACHE: "lots" is not a size/);
    expect(message).toMatch(/DATABASE_URL: must be a postgres/);
  });

  it("refuses to serve NBD to a network without TLS", () => {
    expect(() => loadGatewayConfig({ STRATUS_NBD_HOST: "0.0.0.0" })).toThrow(/not a loopback address/);
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
    });
    expect(loadClientConfig({ STRATUS_URL: "https://stratus.example/", STRATUS_TOKEN: "t" }).url).toBe("https://stratus.example");
  });
});
