/**
 * Issue 23, images in: a server-side import job (POST /api/v1/volumes/import, here through
 * `stratus volume import --server-side`) against a real gateway, from a local http server and from an
 * S3 object (s3rver). Raw and qcow2 images with holes import equal (qemu-img compare) and the bucket
 * holds about their data. While it imports, the volume is listed as 'importing' and no NBD client can
 * open it; a cancelled import and a source that breaks off mid-stream both leave no volume. A presigned
 * URL's query never reaches the gateway's log.
 */
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3ObjectStore } from "@stratus/storage/s3-store";
import { startS3TestServer, type S3TestServer } from "@stratus/storage/testing";
import {
  inheritedEnv,
  makeSparseImage,
  MiB,
  run,
  runOk,
  startGateway,
  STRATUS_BIN,
  REPO_ROOT,
  volumeBucketUsage,
  waitFor,
  type Gateway,
  withGatewayLogs,
} from "../harness";

let gateway: Gateway;
let work: string;
let server: http.Server;
let base: string;
let token: string;
/** Responses held open by /stall: ended when the test is done with them. */
const stalled = new Set<http.ServerResponse>();

/** Serves files of `work` with Content-Length and single Range requests; /stall and /short misbehave. */
function serveFiles(root: string): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url!, "http://x");
    void (async () => {
      const file = path.join(root, path.basename(url.pathname));
      const size = (await stat(file)).size;
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
      if (range) {
        const start = Number(range[1]);
        const end = Math.min(size - 1, Number(range[2]));
        res.writeHead(206, { "content-length": end - start + 1, "content-range": `bytes ${start}-${end}/${size}` });
        return createReadStream(file, { start, end }).pipe(res);
      }
      res.writeHead(200, { "content-length": size });
      if (url.searchParams.has("stall") || url.searchParams.has("short")) {
        // The first 4 MiB, then either nothing more (held open) or a broken connection.
        createReadStream(file, { start: 0, end: 4 * MiB - 1 })
          .on("end", () => (url.searchParams.has("short") ? res.destroy() : stalled.add(res)))
          .pipe(res, { end: false });
        return;
      }
      createReadStream(file).pipe(res);
    })().catch(() => res.writeHead(404).end());
  });
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-e2e-url-import-"));
  server = serveFiles(work);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  gateway = await startGateway();
  token = (await readFile(path.join(gateway.dataDir, "cli-token"), "utf8")).trim();
}, 120_000);

afterAll(async () => {
  for (const res of stalled) res.destroy();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await gateway?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

const withLogs = <T>(body: () => Promise<T>): Promise<T> => withGatewayLogs(gateway, body);

/** The REST API as the local admin. */
async function api<T>(method: string, route: string, body?: unknown): Promise<{ status: number; json: T }> {
  const response = await fetch(`http://127.0.0.1:${gateway.webPort}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as T };
}

interface Progress {
  state: string;
  progress?: { phase: string; bytesDone: number; bytesTotal: number };
  error?: string;
}
interface Listed {
  id: string;
  name: string;
  state: string;
  sizeBytes: number;
}
const volumeNamed = async (name: string) => (await api<{ volumes: Listed[] }>("GET", "/api/v1/volumes")).json.volumes.find((v) => v.name === name);
/** Waits until `check` holds (harness waitFor takes any value but undefined as done). */
const until = (what: string, check: () => Promise<boolean>, timeoutMs = 60_000) =>
  waitFor(what, async () => ((await check()) ? true : undefined), { timeoutMs, intervalMs: 250 });

const progressOf = async (name: string) => (await api<Progress>("GET", `/api/v1/volumes/${name}/import-progress`)).json;

/** `stratus volume import NAME URL --server-side` with extra environment. */
const importCli = (name: string, url: string, env: Record<string, string> = {}) =>
  run(process.execPath, [STRATUS_BIN, "volume", "import", name, url, "--server-side"], {
    cwd: REPO_ROOT,
    env: { ...inheritedEnv(), STRATUS_DATA_DIR: gateway.dataDir, STRATUS_URL: `http://127.0.0.1:${gateway.webPort}`, ...env },
    timeoutMs: 120_000,
  });

describe("server-side import from a URL or S3 (a gateway job)", () => {
  it(
    "imports a raw and a qcow2 image over http and a qcow2 from S3: equal, and the bucket holds about the data",
    () =>
      withLogs(async () => {
        const image = await makeSparseImage(path.join(work, "holes.img"), { size: 64 * MiB, seed: 41, dataFraction: 0.35 });
        await runOk("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", image.path, path.join(work, "holes.qcow2")]);
        const s3: S3TestServer = await startS3TestServer();
        try {
          const store = new S3ObjectStore({ endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, forcePathStyle: true, credentials: s3 });
          await store.put("images/holes.qcow2", await readFile(path.join(work, "holes.qcow2")));
          await store.close();
          const s3Env = {
            STRATUS_IMPORT_S3_ENDPOINT: s3.endpoint,
            STRATUS_IMPORT_S3_ACCESS_KEY_ID: s3.accessKeyId,
            STRATUS_IMPORT_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
          };
          for (const [name, url, format, env] of [
            ["url-raw", `${base}/holes.img?X-Amz-Signature=presigned-secret`, "raw", {}],
            ["url-qcow2", `${base}/holes.qcow2`, "qcow2", {}],
            ["s3-qcow2", `s3://${s3.bucket}/images/holes.qcow2`, "qcow2", s3Env],
          ] as const) {
            const out = await importCli(name, url, env);
            expect(out.code, out.stderr).toBe(0);
            expect(out.stdout).toMatch(new RegExp(`^imported \\S+ \\(${format}\\) into volume ${name}, id vol_`));
            const volume = (await volumeNamed(name))!;
            expect(volume).toMatchObject({ state: "active", sizeBytes: 64 * MiB });
            await runOk("qemu-img", ["compare", "-f", "raw", "-F", "raw", image.path, gateway.uri(name)]);
            const stored = await volumeBucketUsage(gateway, volume.id);
            console.log(`${name}: ${image.dataBytes / MiB} MiB of data in 64 MiB -> ${(stored.bytes / MiB).toFixed(1)} MiB in the bucket`);
            expect(stored.bytes).toBeGreaterThan(image.dataBytes * 0.95);
            expect(stored.bytes).toBeLessThan(image.dataBytes * 1.15);
            expect(await progressOf(name)).toMatchObject({ state: "completed" });
          }
        } finally {
          await s3.stop();
        }
        const logged = JSON.stringify(gateway.logs());
        expect(logged).not.toContain("presigned-secret");
        expect(logged).not.toContain("S3RVER");
      }),
    300_000,
  );

  it(
    "while importing the volume is not attachable; a cancel and a broken source both leave no volume",
    () =>
      withLogs(async () => {
        await makeSparseImage(path.join(work, "big.img"), { size: 32 * MiB, seed: 42, dataFraction: 1 });
        const started = await api<{ volume: { state: string } }>("POST", "/api/v1/volumes/import", { name: "stalls", url: `${base}/big.img?stall=1` });
        expect(started.status).toBe(202);
        expect(started.json.volume.state).toBe("importing");
        await until("4 MiB downloaded", async () => ((await progressOf("stalls")).progress?.bytesDone ?? 0) >= 4 * MiB);
        expect((await progressOf("stalls")).progress).toMatchObject({ phase: "downloading", bytesTotal: 32 * MiB });
        expect((await volumeNamed("stalls"))?.state).toBe("importing");
        // No NBD client sees or opens it while it imports.
        const info = await run("nbdinfo", [gateway.uri("stalls")], { timeoutMs: 20_000 });
        expect(info.code).not.toBe(0);
        expect((await api("POST", "/api/v1/volumes/stalls/import-cancel")).status).toBe(200);
        await until("the cancelled volume is gone", async () => (await volumeNamed("stalls")) === undefined);
        expect((await progressOf("stalls")).state).toBe("cancelled");

        const broken = await importCli("breaks", `${base}/big.img?short=1`);
        expect(broken.code).toBe(1);
        expect(broken.stderr).toMatch(/import failed: the download broke off .*\(volume breaks was deleted\)/);
        await until("the broken import's volume is gone", async () => (await volumeNamed("breaks")) === undefined);

        const refused = await api<{ error: { field?: string; message: string } }>("POST", "/api/v1/volumes/import", {
          name: "nothing",
          url: `${base}/missing.img`,
        });
        expect(refused.status).toBe(400);
        expect(refused.json.error).toMatchObject({ field: "url" });
        expect(await volumeNamed("nothing")).toBeUndefined();
      }),
    180_000,
  );

  it(
    "a gateway stopped or killed mid-import deletes the volume once it runs again",
    () =>
      withLogs(async () => {
        await makeSparseImage(path.join(work, "halt.img"), { size: 32 * MiB, seed: 43, dataFraction: 1 });
        const held = async (name: string) => {
          expect((await api("POST", "/api/v1/volumes/import", { name, url: `${base}/halt.img?stall=1` })).status).toBe(202);
          await until(`${name}: 4 MiB downloaded`, async () => ((await progressOf(name)).progress?.bytesDone ?? 0) >= 4 * MiB);
        };
        // A stop aborts the copy and queues the delete, which the next start runs.
        await held("stopped");
        await gateway.restart();
        await until("the stopped import's volume is gone", async () => (await volumeNamed("stopped")) === undefined);
        expect((await progressOf("stopped")).state).toBe("failed");
        // A kill leaves the volume importing: the start finds its job gone (the embedded Redis keeps nothing)
        // and deletes it; with a Redis that kept the job, its expired lock runs it again as a second attempt, which does the same.
        await held("killed");
        await gateway.kill();
        await gateway.restart();
        await until("the killed import's volume is gone", async () => (await volumeNamed("killed")) === undefined, 150_000);
        expect(gateway.logs().some((line) => line.volume === "killed" && String(line.msg).startsWith("an import's job is gone"))).toBe(true);
        expect((await progressOf("killed")).state).toBe("failed");
      }),
    240_000,
  );
});
