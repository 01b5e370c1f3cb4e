/**
 * `stratus volume lock NAME` is a thin REST client: it POSTs to /api/v1/volumes/NAME/lock and prints the
 * server's sentence, or the server's refusal on stderr with exit code 1. The server is a stand-in here;
 * the route and the verb have their own tests.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const STRATUS_BIN = fileURLToPath(new URL("../../bin/stratus.mjs", import.meta.url));

describe("stratus volume lock", () => {
  let dataDir: string;
  let server: Server;
  let port: number;
  const requests: Array<{ method: string; url: string }> = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "stratus-lock-cli-"));
    await writeFile(path.join(dataDir, "cli-token"), "stratus_local000_token\n", { mode: 0o600 });
    server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        requests.push({ method: req.method!, url: req.url! });
        const answer = (status: number, value: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
        if (req.url === "/api/v1/volumes/auto/lock") {
          return answer(400, {
            error: { code: "BAD_REQUEST", message: "volume auto has auto-unlock: gateways open it with the master key, so it cannot be locked" },
          });
        }
        answer(200, { volume: { name: "safe" }, wasUnlocked: true, message: "locked volume safe: its gateway commits and closes it" });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const stratus = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [STRATUS_BIN, ...args],
        { env: { PATH: process.env.PATH, HOME: process.env.HOME, STRATUS_DATA_DIR: dataDir, STRATUS_WEB_PORT: String(port) }, timeout: 60_000 },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
      );
    });

  it("posts to the lock route and prints the outcome (or JSON)", async () => {
    const locked = await stratus(["volume", "lock", "safe"]);
    expect([locked.code, locked.stdout.trim(), locked.stderr]).toEqual([0, "locked volume safe: its gateway commits and closes it", ""]);
    expect(requests.at(-1)).toEqual({ method: "POST", url: "/api/v1/volumes/safe/lock" });
    const json = await stratus(["volume", "lock", "safe", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ wasUnlocked: true });
  });

  it("shows a refusal as an error", async () => {
    const refused = await stratus(["volume", "lock", "auto"]);
    expect([refused.code, refused.stdout, refused.stderr.trim()]).toEqual([
      1,
      "",
      "stratus: volume auto has auto-unlock: gateways open it with the master key, so it cannot be locked",
    ]);
  });
});
