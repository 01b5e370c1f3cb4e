/**
 * `stratus volume detach NAME [--force]` is a thin REST client: it POSTs { force } to
 * /api/v1/volumes/NAME/detach and prints the server's sentence, or the server's refusal on stderr with
 * exit code 1. The server is a stand-in here; the route and the verb have their own tests.
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

describe("stratus volume detach", () => {
  let dataDir: string;
  let server: Server;
  let port: number;
  const requests: Array<{ method: string; url: string; body: unknown }> = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "stratus-detach-cli-"));
    await writeFile(path.join(dataDir, "cli-token"), "stratus_local000_token\n", { mode: 0o600 });
    server = createServer((req, res) => {
      let text = "";
      req.on("data", (chunk: Buffer) => (text += chunk.toString()));
      req.on("end", () => {
        const body = JSON.parse(text) as { force: boolean };
        requests.push({ method: req.method!, url: req.url!, body });
        const answer = (status: number, value: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
        if (req.url === "/api/v1/volumes/busy/detach" && !body.force) {
          return answer(409, { error: { code: "CONFLICT", message: "laptop did not let go of volume busy within 30s: force detach fences it" } });
        }
        const outcome = body.force ? "forced" : "released";
        answer(200, { volumeId: "vol_1", name: "busy", outcome, holder: "laptop", message: `${outcome} volume busy` });
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

  it("asks cooperatively by default and shows a refusal as an error", async () => {
    const refused = await stratus(["volume", "detach", "busy"]);
    expect([refused.code, refused.stdout, refused.stderr.trim()]).toEqual([
      1,
      "",
      "stratus: laptop did not let go of volume busy within 30s: force detach fences it",
    ]);
    expect(requests.at(-1)).toEqual({ method: "POST", url: "/api/v1/volumes/busy/detach", body: { force: false } });
  });

  it("sends force with --force and prints the outcome (or JSON)", async () => {
    const forced = await stratus(["volume", "detach", "busy", "--force"]);
    expect([forced.code, forced.stdout.trim(), forced.stderr]).toEqual([0, "forced volume busy", ""]);
    expect(requests.at(-1)?.body).toEqual({ force: true });
    const json = await stratus(["volume", "detach", "busy", "--force", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ outcome: "forced", holder: "laptop" });
  });
});
