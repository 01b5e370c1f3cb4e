/**
 * Volume leases as two gateways on one PostgreSQL see them: each a VolumeEngines with its own cache
 * folder and LeaseKeeper (on a ManualClock), one shared bucket. Opening for writing takes the lease,
 * the same device shares it, another is refused; INFO and LIST take nothing; a lost lease fences the
 * engine (FLUSH fails, connections close, its dirty data goes aside); a leftover written under a
 * lease someone took since is never committed.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { acquireLease, findLiveLease, loadChunkMap, releaseLease } from "@stratus/db";
import { registerDormantCaches } from "@stratus/storage";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { NBD_OPT_EXPORT_NAME, NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_LIST, NBD_REP_ACK, NBD_REP_ERR_POLICY, NBD_REP_SERVER } from "../protocol/constants";
import { encodeInfoRequest, encodeOption } from "../protocol/handshake-frames";
import { ExportRefusedError } from "../server/export-registry";
import { createNbdServer } from "../server/nbd-server";
import { RawNbdClient } from "../testing/raw-nbd-client";
import { waitFor } from "../testing/nbd-tools";
import { ORPHANS_DIR } from "./orphan-sets";
import { MiB, TTL, useLeaseFixture } from "../testing/lease-fixture";

const logger = pino({ level: process.env.STRATUS_TEST_LOG_LEVEL ?? "silent" });

describe("volume leases", () => {
  const fx = useLeaseFixture("stratus-leases-");
  const { gateway, volume, device, tokenOf, open, running } = fx;

  it("takes the lease on open, shares it with the same device, refuses another device and releases it on close", async () => {
    const row = await volume("shared");
    const g1 = gateway("gw-one");
    const g2 = gateway("gw-two");
    const laptop = g1.engines.forScope(device("dev_laptop", "laptop"));

    const first = await open(laptop, "shared");
    const lease = await findLiveLease(fx.database.db, row.id, new Date());
    expect(lease).toMatchObject({ gatewayId: "gw-one", deviceCredentialId: "dev_laptop", holderName: "laptop", clientAddress: "192.0.2.7", fencingToken: 1 });
    expect(await tokenOf(row.id)).toBe(1);

    // Multi-conn of the same device: the same engine and lease, no new token.
    const second = await open(laptop, "shared");
    await second.device.write(0, Buffer.alloc(4096, 7));
    const seen = Buffer.alloc(4096);
    await first.device.read(0, seen);
    expect(seen.every((byte) => byte === 7)).toBe(true);
    expect(await tokenOf(row.id)).toBe(1);

    // Another device whose holder does not hand over (no channel here): refused, naming the holder and since when.
    await expect(g2.engines.forScope(device("dev_phone", "phone")).open("shared")).rejects.toThrow(ExportRefusedError);
    await expect(g2.engines.forScope(device("dev_laptop", "laptop")).open("shared")).rejects.toThrow(/in use by laptop through gateway gw-one since \d{4}-/);
    expect(await tokenOf(row.id)).toBe(1);

    await first.release();
    expect(await findLiveLease(fx.database.db, row.id, new Date())).toBeDefined();
    await second.release();
    // The last connection's close committed, then gave the lease back.
    expect(await findLiveLease(fx.database.db, row.id, new Date())).toBeUndefined();
    expect((await loadChunkMap(fx.database.db, row.id)).chunks.size).toBe(1);

    // Now another gateway's device takes it, with the next token, and reads what was committed.
    const taken = await open(g2.engines.forScope(device("dev_phone", "phone")), "shared");
    expect(await tokenOf(row.id)).toBe(2);
    const read = Buffer.alloc(4096);
    await taken.device.read(0, read);
    expect(read.every((byte) => byte === 7)).toBe(true);
    await taken.release();
  });

  it("waits a moment for a holder that is letting go before refusing", async () => {
    const row = await volume("handed-over");
    const g1 = gateway("gw-one");
    const g2 = gateway("gw-two", { heldWaitMs: 1_000 });
    const held = await open(g1.engines.forScope(device("dev_laptop", "laptop")), "handed-over");
    const waiting = open(g2.engines.forScope(device("dev_phone", "phone")), "handed-over");
    // The first attempt found it held and sleeps (beside the heartbeat's timer).
    await waitFor(() => g2.clock.pendingTimers === 2, "the open to wait");
    await held.release();
    await g2.clock.advance(100);
    const taken = await waiting;
    expect(await findLiveLease(fx.database.db, row.id, new Date())).toMatchObject({ gatewayId: "gw-two", deviceCredentialId: "dev_phone", fencingToken: 2 });
    await taken.release();

    // A holder that stays: refused once the wait is over.
    const stays = await open(g1.engines.forScope(device("dev_laptop", "laptop")), "handed-over");
    const refused = expect(g2.engines.forScope(device("dev_phone", "phone")).open("handed-over")).rejects.toThrow(/in use by laptop/);
    for (let step = 0; step < 10; step++) {
      await waitFor(() => g2.clock.pendingTimers === 2, "the open to wait");
      await g2.clock.advance(100);
    }
    await refused;
    await stays.release();
  });

  it("answers INFO and LIST without a lease or a token, even while another gateway holds the volume", async () => {
    const row = await volume("probed");
    const g1 = gateway("gw-one");
    const g2 = gateway("gw-two");
    const held = await open(g1.engines.forScope(device(null)), "probed");
    const server = createNbdServer({ registry: g2.engines.forScope(device(null)), logger });
    const { port } = await server.listen(0, "127.0.0.1");
    try {
      for (let probe = 0; probe < 5; probe++) {
        const client = await RawNbdClient.connect(port);
        await client.greet();
        const listed = await client.option(NBD_OPT_LIST);
        expect(listed.some((reply) => reply.replyType === NBD_REP_SERVER && reply.data.includes("probed"))).toBe(true);
        const info = await client.option(NBD_OPT_INFO, encodeInfoRequest("probed", []));
        expect(info.at(-1)?.replyType).toBe(NBD_REP_ACK);
        // GO from another gateway: refused with the holder in the message, nothing taken.
        const go = await client.option(NBD_OPT_GO, encodeInfoRequest("probed", []));
        expect(go.at(-1)?.replyType).toBe(NBD_REP_ERR_POLICY);
        expect(go.at(-1)?.data.toString("utf8")).toMatch(/volume probed is in use by local through gateway gw-one since/);
        client.socket.destroy();
      }
      // EXPORT_NAME cannot be answered with an error: "the server MUST terminate the session".
      const legacy = await RawNbdClient.connect(port);
      await legacy.greet();
      legacy.send(encodeOption(NBD_OPT_EXPORT_NAME, Buffer.from("probed")));
      await legacy.closed;
      expect(await tokenOf(row.id)).toBe(1);
      expect(await findLiveLease(fx.database.db, row.id, new Date())).toMatchObject({ gatewayId: "gw-one", fencingToken: 1 });
      // The holder never noticed.
      await held.device.write(0, Buffer.alloc(512, 1));
      await held.device.flush();
    } finally {
      await held.release();
      await server.close();
    }
  });

  it("renews every held lease on the heartbeat, every third of the TTL", async () => {
    const row = await volume("renewed");
    const g1 = gateway("gw-one");
    const opened = await open(g1.engines.forScope(device(null)), "renewed");
    const before = (await findLiveLease(fx.database.db, row.id, new Date(g1.clock.now())))!;
    await g1.clock.advance(TTL / 3);
    await waitFor(async () => (await findLiveLease(fx.database.db, row.id, new Date(g1.clock.now())))!.heartbeatAt > before.heartbeatAt, "the heartbeat");
    const after = (await findLiveLease(fx.database.db, row.id, new Date(g1.clock.now())))!;
    expect(after.expiresAt.getTime()).toBe(g1.clock.now() + TTL);
    expect(after.fencingToken).toBe(before.fencingToken);
    await opened.release();
  });

  it("fences an engine whose lease was taken: FLUSH fails, connections close, dirty data goes aside uncommitted", async () => {
    const row = await volume("fenced-by-heartbeat", "local");
    const g1 = gateway("gw-one");
    const opened = await open(g1.engines.forScope(device(null)), "fenced-by-heartbeat");
    let revoked = 0;
    opened.onRevoked?.(() => revoked++);
    await opened.device.write(0, Buffer.alloc(MiB, 9));
    await opened.device.flush(); // local durability: in the cache only

    // Another gateway forces the volume away (force detach); the holder learns it at its next heartbeat.
    const forced = await acquireLease(fx.database.db, {
      volumeId: row.id,
      holder: { gatewayId: "gw-two", gatewayRun: "run", deviceCredentialId: null, holderName: "other", clientAddress: null },
      ttlMs: TTL,
      now: new Date(),
      force: true,
    });
    expect(forced.kind).toBe("acquired");
    await g1.clock.advance(TTL / 3);
    await waitFor(() => revoked === 1, "the connection to be closed");

    await expect(opened.device.flush()).rejects.toMatchObject({ code: "ESHUTDOWN" });
    await expect(opened.device.write(0, Buffer.alloc(512))).rejects.toMatchObject({ code: "ESHUTDOWN" });
    expect((await loadChunkMap(fx.database.db, row.id)).epoch).toBe(0);
    const orphan = path.join(g1.cacheDir, ORPHANS_DIR, `${row.id}-1`);
    expect(JSON.parse(readFileSync(path.join(orphan, "orphan.json"), "utf8"))).toMatchObject({ volumeId: row.id, fencingToken: 1, bytes: MiB });
    expect(existsSync(path.join(g1.cacheDir, row.id))).toBe(false);
    await opened.release();
    expect(await findLiveLease(fx.database.db, row.id, new Date())).toMatchObject({ gatewayId: "gw-two" });
    // A lock keeps the orphan set (to export or discard); a delete takes it along.
    g1.engines.dropCache(row.id);
    expect(existsSync(orphan)).toBe(true);
    g1.engines.dropCache(row.id, { deleted: true });
    expect(existsSync(orphan)).toBe(false);
  });

  it("stops serving a volume whose lease expired unrenewed, and commits its data once it takes the lease back", async () => {
    const row = await volume("expired", "local");
    let down = false;
    // The fx.database as the heartbeat sees it: its renewals fail while `down`.
    const flaky = new Proxy(fx.database.db, {
      get: (target, property, receiver) =>
        property === "update" && down
          ? () => {
              throw new Error("fx.database unreachable");
            }
          : (Reflect.get(target, property, receiver) as unknown),
    });
    const g1 = gateway("gw-one", { leaseDb: flaky });
    const opened = await open(g1.engines.forScope(device(null)), "expired");
    let revoked = 0;
    opened.onRevoked?.(() => revoked++);
    await opened.device.write(0, Buffer.alloc(MiB, 4));
    await opened.device.flush();

    down = true;
    await g1.clock.advance((2 * TTL) / 3);
    expect(revoked).toBe(0); // not expired yet: still serving
    await g1.clock.advance(TTL / 3);
    await waitFor(() => revoked === 1, "the connection to be closed");
    await expect(opened.device.flush()).rejects.toMatchObject({ code: "ESHUTDOWN" });
    await opened.release();
    // Nobody can tell whether another holder took it: the data stays in the cache, not aside.
    expect(existsSync(path.join(g1.cacheDir, ORPHANS_DIR))).toBe(false);
    expect((await loadChunkMap(fx.database.db, row.id)).epoch).toBe(0);

    // Nobody did: the next open takes the lease back and its close commits the data.
    down = false;
    const again = await open(g1.engines.forScope(device(null)), "expired");
    const read = Buffer.alloc(MiB);
    await again.device.read(0, read);
    expect(read.every((byte) => byte === 4)).toBe(true);
    await again.release();
    expect((await loadChunkMap(fx.database.db, row.id)).chunks.size).toBe(1);
  });

  it("fences an engine whose commit is refused for a stale token", async () => {
    const row = await volume("fenced-by-commit");
    const g1 = gateway("gw-one");
    const opened = await open(g1.engines.forScope(device(null)), "fenced-by-commit");
    let revoked = 0;
    opened.onRevoked?.(() => revoked++);
    await opened.device.write(0, Buffer.alloc(4096, 3));
    await acquireLease(fx.database.db, {
      volumeId: row.id,
      holder: { gatewayId: "gw-two", gatewayRun: "run", deviceCredentialId: null, holderName: "other", clientAddress: null },
      ttlMs: TTL,
      now: new Date(),
      force: true,
    });
    // Cloud durability: this FLUSH commits, the commit is refused, the engine stops.
    await expect(opened.device.flush()).rejects.toThrow();
    await waitFor(() => revoked === 1, "the connection to be closed");
    await expect(opened.device.flush()).rejects.toMatchObject({ code: "ESHUTDOWN" });
    expect((await loadChunkMap(fx.database.db, row.id)).epoch).toBe(0);
    expect(existsSync(path.join(g1.cacheDir, ORPHANS_DIR, `${row.id}-1`, "orphan.json"))).toBe(true);
    await opened.release();
  });

  it("commits a leftover only while the volume's token is the one it was written under", async () => {
    const stale = await volume("leftover-stale", "local");
    const current = await volume("leftover-current", "local");
    const g1 = gateway("gw-one");
    for (const name of ["leftover-stale", "leftover-current"]) {
      const opened = await open(g1.engines.forScope(device(null)), name);
      await opened.device.write(0, Buffer.alloc(MiB, 5));
      await opened.device.flush();
    }
    // A crash: the dirty data stays in the cache, the leases stay until they expire.
    await g1.leases.stop();
    g1.engines.abandonAll();
    await g1.engines.closeAll(); // as a timed-out stop does: nothing is given back
    running.splice(running.indexOf(g1), 1);
    expect(await findLiveLease(fx.database.db, current.id, new Date())).toMatchObject({ gatewayId: "gw-one", fencingToken: 1 });
    // Meanwhile another gateway used one of the volumes (its lease expired, so it took it).
    const later = new Date(Date.now() + 2 * TTL);
    const other = await acquireLease(fx.database.db, {
      volumeId: stale.id,
      holder: { gatewayId: "gw-two", gatewayRun: "run", deviceCredentialId: null, holderName: "other", clientAddress: null },
      ttlMs: TTL,
      now: later,
    });
    expect(other.kind).toBe("acquired");
    if (other.kind === "acquired") await releaseLease(fx.database.db, stale.id, other.lease.fencingToken);

    // The restart (same gateway id and cache folder, a new run).
    const restarted = gateway("gw-one", { cacheDir: g1.cacheDir });
    const leftovers = registerDormantCaches(restarted.cacheDir, restarted.budget);
    expect(leftovers.sort()).toEqual([stale.id, current.id].sort());
    await restarted.engines.commitLeftovers(leftovers);

    expect((await loadChunkMap(fx.database.db, stale.id)).epoch).toBe(0);
    expect(existsSync(path.join(restarted.cacheDir, ORPHANS_DIR, `${stale.id}-1`, "orphan.json"))).toBe(true);
    expect((await loadChunkMap(fx.database.db, current.id)).chunks.size).toBe(1);
    expect(await findLiveLease(fx.database.db, current.id, new Date())).toBeUndefined();
  });
});
