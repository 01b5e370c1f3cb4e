/**
 * Orphan sets over REST, with a real cache folder the storage engine left: the volume's list, the image
 * download (the uncommitted bytes at their offsets, only from the process holding the set, write scope
 * only) and the discard.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { issueApiToken, orphanSetsChannel, ORPHANS_FOLDER, createVolume, type OrphanSetView } from "@stratus/control";
import { findOrphanSet, recordOrphanSet } from "@stratus/db";
import { CacheBudget, MemoryObjectStore, Volume } from "@stratus/storage";
import { MemoryChunkIndex } from "@stratus/storage/testing";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import * as setRoute from "@/app/api/v1/orphans/[id]/route";
import * as imageRoute from "@/app/api/v1/orphans/[id]/image/route";
import * as volumeOrphansRoute from "@/app/api/v1/volumes/[name]/orphans/route";
import { makeRequest, useSignedInUser } from "./testing";

const KiB = 1024;
const SIZE = 1024 * KiB;
const CHUNK = 64 * KiB;
const root = mkdtempSync(path.join(tmpdir(), "stratus-orphans-rest-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const params = (values: Record<string, string>) => ({ params: Promise.resolve(values) });

/** A cache folder as a fenced engine leaves it under <cache>/orphans/<dirName>, with chunk 3 written and never committed. */
async function orphanFolder(cacheDir: string, dirName: string): Promise<Buffer> {
  const volume = await Volume.open({
    volumeId: dirName,
    size: SIZE,
    chunkSize: CHUNK,
    store: new MemoryObjectStore(),
    index: new MemoryChunkIndex(),
    cacheDir: path.join(cacheDir, ORPHANS_FOLDER),
    cacheBudget: new CacheBudget({ targetBytes: SIZE, dirtyLimitBytes: SIZE }),
    durability: "local",
    commitIntervalMs: 3_600_000,
  });
  const expected = Buffer.alloc(SIZE);
  expected.fill(7, 3 * CHUNK + 100, 3 * CHUNK + 4196);
  await volume.write(3 * CHUNK + 100, expected.subarray(3 * CHUNK + 100, 3 * CHUNK + 4196));
  await volume.flush();
  volume.abandon();
  return expected;
}

describe("REST /api/v1/orphans", () => {
  const user = useSignedInUser("orphans@example.com");

  it("lists a volume's sets, downloads one as a raw image where it is held, and discards it", async () => {
    const { t, caller, userId } = user();
    const volume = await createVolume(
      { runtime: t.runtime, actor: { userId, via: "session", scope: "write" } },
      { name: "disk", size: SIZE, chunkSize: CHUNK },
    );
    const cacheDir = path.join(root, "cache");
    const dirName = `${volume.id}-1`;
    const expected = await orphanFolder(cacheDir, dirName);
    const row = (await recordOrphanSet(t.runtime.database.db, {
      volumeId: volume.id,
      gatewayId: "gw-here",
      dirName,
      fencingToken: 1,
      bytes: CHUNK,
      dirtyChunks: 1,
      reason: "another holder took its lease",
      orphanedAt: new Date(),
    }))!;

    // A web process without the gateway: listed, not exportable, 409 naming the gateway.
    const listed = await volumeOrphansRoute.GET(makeRequest(caller, "GET", "/api/v1/volumes/disk/orphans"), params({ name: "disk" }));
    const [view] = ((await listed.json()) as { orphanSets: OrphanSetView[] }).orphanSets;
    expect(view).toMatchObject({ id: row.id, volumeName: "disk", gatewayId: "gw-here", dirtyChunks: 1, exportable: false });
    const elsewhere = await imageRoute.GET(makeRequest(caller, "GET", `/api/v1/orphans/${row.id}/image`), params({ id: row.id }));
    expect(elsewhere.status).toBe(409);

    // The embedded default: this process's gateway holds it.
    t.runtime.localGateway = { gatewayId: "gw-here", cacheDir };
    const image = await imageRoute.GET(makeRequest(caller, "GET", `/api/v1/orphans/${row.id}/image`), params({ id: row.id }));
    expect(image.status).toBe(200);
    expect(image.headers.get("content-disposition")).toBe('attachment; filename="disk-orphan-1.img"');
    expect(image.headers.get("content-length")).toBe(String(SIZE));
    expect(Buffer.from(await image.arrayBuffer()).equals(expected)).toBe(true);
    const read = await issueApiToken(t.runtime.database.db, userId, { name: "read", scope: "read", expiresAt: null });
    const readOnly = await imageRoute.GET(
      makeRequest({ kind: "token", secret: read.secret }, "GET", `/api/v1/orphans/${row.id}/image`),
      params({ id: row.id }),
    );
    expect(readOnly.status).toBe(403);

    // Discard: the holding gateway is told on the orphan channel; the set leaves the lists at once.
    const listener = new Redis("redis://127.0.0.1:6379");
    const heard = new Promise<string>((resolve) => listener.on("message", (_channel: string, text: string) => resolve(text)));
    await listener.subscribe(orphanSetsChannel(t.runtime.config.prefix));
    const discarded = await setRoute.DELETE(makeRequest(caller, "DELETE", `/api/v1/orphans/${row.id}`), params({ id: row.id }));
    expect(await discarded.json()).toEqual({ id: row.id, discarded: true });
    expect(JSON.parse(await heard)).toEqual({ kind: "discard", orphanSetId: row.id, gatewayId: "gw-here", dirName });
    listener.disconnect();
    expect((await findOrphanSet(t.runtime.database.db, row.id))!.discardedAt).not.toBeNull();
    expect((await setRoute.GET(makeRequest(caller, "GET", `/api/v1/orphans/${row.id}`), params({ id: row.id }))).status).toBe(404);
  });
});
