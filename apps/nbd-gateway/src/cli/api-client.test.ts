/**
 * The CLI's client sends the local token file (this machine's admin token) only to a server on this
 * machine: a remote STRATUS_URL without STRATUS_TOKEN is refused before any request leaves. Checked
 * with a real server on 127.0.0.1 (which does receive the token) and with the `stratus` command itself.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { loadClientConfig } from "../config/env";
import { ApiClient, CliError } from "./api-client";

const STRATUS_BIN = fileURLToPath(new URL("../../bin/stratus.mjs", import.meta.url));
const TOKEN = "stratus_local000_file-token-that-must-stay-home";

describe("the CLI's token file and passphrases", () => {
  let dataDir: string;
  let server: Server;
  let port: number;
  const seen: (string | undefined)[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "stratus-api-client-"));
    await writeFile(path.join(dataDir, "cli-token"), `${TOKEN}\n`, { mode: 0o600 });
    server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { "content-type": "application/json" }).end('{"volumes":[]}');
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(() => vi.restoreAllMocks());
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("goes to the server on this machine", async () => {
    const client = new ApiClient(loadClientConfig({ STRATUS_DATA_DIR: dataDir, STRATUS_WEB_PORT: String(port) }));
    expect(await client.request("GET", "/api/v1/volumes")).toEqual({ volumes: [] });
    expect(seen.at(-1)).toBe(`Bearer ${TOKEN}`);
  });

  it("is never sent to a remote URL, https or (with --insecure) http", async () => {
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    for (const config of [
      loadClientConfig({ STRATUS_DATA_DIR: dataDir, STRATUS_URL: "https://stratus.example.invalid" }),
      loadClientConfig({ STRATUS_DATA_DIR: dataDir, STRATUS_URL: "http://10.1.2.3:3000" }, { insecure: true }),
    ]) {
      const error = await new ApiClient(config).request("GET", "/api/v1/volumes").catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CliError);
      expect((error as CliError).message).toMatch(/is another machine: set STRATUS_TOKEN/);
      expect((error as CliError).message).not.toContain(TOKEN);
    }
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  function stratus(args: string[], env: NodeJS.ProcessEnv, input = ""): Promise<{ code: number; stderr: string }> {
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [STRATUS_BIN, ...args],
        { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 60_000 },
        (error, _stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stderr: String(stderr) }),
      );
      child.stdin?.end(input);
    });
  }

  it("the stratus command refuses plain http to another machine without --insecure, and the token file to any remote URL", async () => {
    const plain = await stratus(["volume", "list"], { STRATUS_DATA_DIR: dataDir, STRATUS_URL: "http://10.1.2.3:3000", STRATUS_TOKEN: "stratus_x_y" });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/STRATUS_URL http:\/\/10\.1\.2\.3:3000 is plain http to another machine.*--insecure/);
    const insecure = await stratus(["--insecure", "volume", "list"], { STRATUS_DATA_DIR: dataDir, STRATUS_URL: "http://10.1.2.3:3000" });
    expect(insecure.code).toBe(1);
    expect(insecure.stderr).toMatch(/10\.1\.2\.3:3000 is another machine: set STRATUS_TOKEN/);
    const local = await stratus(["volume", "list"], { STRATUS_DATA_DIR: dataDir, STRATUS_WEB_PORT: String(port) });
    expect([local.code, local.stderr]).toEqual([0, ""]);
    expect(seen.at(-1)).toBe(`Bearer ${TOKEN}`);
  });

  it("a new passphrase shorter than the minimum is refused before anything is sent", async () => {
    const before = seen.length;
    const env = { STRATUS_DATA_DIR: dataDir, STRATUS_WEB_PORT: String(port) };
    const create = await stratus(["volume", "create", "v", "--size", "1M", "--passphrase-stdin"], env, "short pass\n");
    expect([create.code, create.stderr.trim()]).toEqual([1, "stratus: the passphrase needs at least 12 characters"]);
    const passwd = await stratus(["volume", "passwd", "v", "--passphrase-stdin"], env, "the old one, any length\neleven char\n");
    expect([passwd.code, passwd.stderr.trim()]).toEqual([1, "stratus: the passphrase needs at least 12 characters"]);
    expect(seen.length).toBe(before);
  });
});
