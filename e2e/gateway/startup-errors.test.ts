/**
 * A wrong setting stops `stratus gateway` at once with one sentence that says what is wrong and
 * which variable to change, not a stack trace, and nothing is served.
 */
import { createServer, type Server } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, run, STRATUS_BIN } from "../harness";

let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-startup-"));
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function gatewayFails(env: Record<string, string>): Promise<string> {
  const nbdPort = String(await freePort());
  const webPort = String(await freePort());
  const result = await run(process.execPath, [STRATUS_BIN, "gateway"], {
    env: { ...process.env, STRATUS_DATA_DIR: dataDir, STRATUS_NBD_PORT: nbdPort, STRATUS_WEB_PORT: webPort, ...env },
    timeoutMs: 60_000,
  });
  expect(result.code).toBe(1);
  expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  return result.stderr.trim();
}

describe("stratus gateway refuses a wrong configuration with a clear message", () => {
  let holder: Server;
  let busyPort: number;

  beforeAll(async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    busyPort = (holder.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => holder.close(() => resolve())));

  it("a bad size", async () => {
    expect(await gatewayFails({ STRATUS_DIRTY_LIMIT: "lots" })).toMatch(/STRATUS_DIRTY_LIMIT: "lots" is not a size/);
  });

  it("a port in use", async () => {
    expect(await gatewayFails({ STRATUS_NBD_PORT: String(busyPort) })).toMatch(
      new RegExp(`NBD port 127\\.0\\.0\\.1:${busyPort} is already in use.*STRATUS_NBD_PORT`),
    );
  });

  it("an unreachable S3 endpoint", async () => {
    const closed = await freePort();
    const message = await gatewayFails({
      STRATUS_S3_ENDPOINT: `http://127.0.0.1:${closed}`,
      STRATUS_S3_BUCKET: "stratus",
      STRATUS_S3_ACCESS_KEY_ID: "id",
      STRATUS_S3_SECRET_ACCESS_KEY: "a-secret-that-must-not-show",
    });
    expect(message).toMatch(new RegExp(`cannot use S3 bucket "stratus" at http://127\\.0\\.0\\.1:${closed}`));
    expect(message).not.toContain("a-secret-that-must-not-show");
  });

  it("an unreachable database, without echoing its password", async () => {
    const closed = await freePort();
    const message = await gatewayFails({ DATABASE_URL: `postgres://stratus:pw-must-not-show@127.0.0.1:${closed}/stratus` });
    expect(message).toMatch(new RegExp(`cannot reach PostgreSQL at 127\\.0\\.0\\.1:${closed}`));
    expect(message).not.toContain("pw-must-not-show");
  });

  it("a network address for NBD without TLS", async () => {
    expect(await gatewayFails({ STRATUS_NBD_HOST: "0.0.0.0", STRATUS_NBD_TLS: "optional" })).toMatch(/not a loopback address; use require/);
  });

  it("every address for NBD, without the name clients dial (the server certificate needs it)", async () => {
    expect(await gatewayFails({ STRATUS_NBD_HOST: "0.0.0.0" })).toMatch(/set STRATUS_NBD_PUBLIC_HOST/);
  });
});
