/**
 * Issue 3, acceptance 4 at the gateway level: what a user writes is never in the bucket in plain
 * form, and the deployment's master key and the volumes' passphrases never reach the gateway's logs
 * (at debug level) or the CLI's output. Also, through the real CLI: a volume without auto-unlock is
 * not attachable after a restart until unlocked, a wrong passphrase is refused, and `volume passwd`
 * rewrites no chunk object and retires the old passphrase.
 */
import { randomBytes } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectNbd,
  createVolume,
  folderUsage,
  grepObjects,
  MiB,
  openBucket,
  seededBytes,
  startGateway,
  waitForCommitted,
  type Gateway,
  withGatewayLogs,
} from "../harness";

const MASTER_KEY = randomBytes(32);
const PASSPHRASE = "e2e correct horse battery staple 7f3a";
const NEW_PASSPHRASE = "e2e new passphrase after passwd 91c2";
const MARKER = Buffer.from("STRATUS-E2E-PLAINTEXT-MARKER-5d1e0c7a ");

let gateway: Gateway;
const cliOutput: string[] = [];

beforeAll(async () => {
  gateway = await startGateway({ env: { STRATUS_MASTER_KEY: MASTER_KEY.toString("base64"), STRATUS_LOG_LEVEL: "debug", STRATUS_COMMIT_INTERVAL: "300ms" } });
});

afterAll(() => gateway?.dispose());

const withLogs = <T>(body: () => Promise<T>): Promise<T> => withGatewayLogs(gateway, body);

/** Runs the CLI and keeps its output for the secrets grep; returns stdout, or the error. */
async function cli(args: string[], input?: string): Promise<string | Error> {
  try {
    const out = await gateway.cli(args, { input });
    cliOutput.push(out);
    return out;
  } catch (error) {
    cliOutput.push(String(error));
    return error as Error;
  }
}

/** 1 MiB of the marker text (compressible) then 1 MiB of random bytes (stored uncompressed). */
function userData(seed: number): Buffer {
  const text = Buffer.alloc(MiB);
  for (let i = 0; i + MARKER.length <= MiB; i += MARKER.length) MARKER.copy(text, i);
  return Buffer.concat([text, seededBytes(seed)(MiB)]);
}

async function writeAndCommit(name: string, data: Buffer): Promise<void> {
  const client = await connectNbd(gateway.nbdPort, name);
  await client.write(0, data);
  await client.flush();
  await client.close();
  await waitForCommitted(gateway, name, { timeoutMs: 60_000 });
}

async function chunkMtimes(volumeId: string): Promise<Record<string, number>> {
  const dir = path.join(gateway.bucketDir, "vol", volumeId, "c");
  const times: Record<string, number> = {};
  for (const entry of await readdir(dir, { recursive: true })) {
    const info = await stat(path.join(dir, entry));
    if (info.isFile()) times[entry] = info.mtimeMs;
  }
  return times;
}

async function attachable(name: string): Promise<boolean> {
  return connectNbd(gateway.nbdPort, name).then(
    async (client) => {
      await client.close();
      return true;
    },
    () => false,
  );
}

describe("encryption and secrets, seen from outside the gateway", () => {
  it("the bucket holds no plaintext of what was written (auto-unlock and passphrase volumes)", () =>
    withLogs(async () => {
      await createVolume(gateway, "plain-slot", { size: "8M", chunkSize: "256K" });
      const auto = await createVolume(gateway, "pass-slot", { size: "8M", chunkSize: "256K", passphrase: PASSPHRASE });
      const a = userData(31);
      const b = userData(32);
      await writeAndCommit("plain-slot", a);
      await writeAndCommit("pass-slot", b);
      expect(auto.id).toBeTruthy();

      const needles = [
        MARKER,
        a.subarray(MiB + 4096, MiB + 4096 + 64),
        b.subarray(MiB + 8192, MiB + 8192 + 64),
        Buffer.from(PASSPHRASE),
        MASTER_KEY,
        Buffer.from(MASTER_KEY.toString("base64")),
      ];
      const store = openBucket(gateway);
      const usage = await folderUsage(gateway.bucketDir);
      expect(usage.files).toBeGreaterThan(4); // chunks, headers and manifests are there to grep
      expect(await grepObjects(store, "", needles)).toEqual([]);
      await store.close();
    }));

  it("a volume without auto-unlock: locked after a restart, wrong passphrase refused, passwd rewrites no chunk and retires the old one", () =>
    withLogs(async () => {
      const created = await createVolume(gateway, "locked", { size: "8M", chunkSize: "256K", passphrase: PASSPHRASE, noAutoUnlock: true });
      const data = userData(33);
      await writeAndCommit("locked", data);
      const before = await chunkMtimes(created.id);
      expect(Object.keys(before).length).toBeGreaterThan(0);

      await gateway.restart();
      expect(await attachable("locked")).toBe(false);
      expect(await cli(["volume", "unlock", "locked", "--passphrase-stdin"], "not the passphrase\n")).toBeInstanceOf(Error);
      expect(await attachable("locked")).toBe(false);
      expect(await cli(["volume", "unlock", "locked", "--passphrase-stdin"], `${PASSPHRASE}\n`)).not.toBeInstanceOf(Error);
      expect(await attachable("locked")).toBe(true);

      expect(await cli(["volume", "passwd", "locked", "--passphrase-stdin"], `${PASSPHRASE}\n${NEW_PASSPHRASE}\n`)).not.toBeInstanceOf(Error);
      expect(await chunkMtimes(created.id)).toEqual(before); // no chunk object touched

      await gateway.restart();
      expect(await cli(["volume", "unlock", "locked", "--passphrase-stdin"], `${PASSPHRASE}\n`)).toBeInstanceOf(Error);
      expect(await cli(["volume", "unlock", "locked", "--passphrase-stdin"], `${NEW_PASSPHRASE}\n`)).not.toBeInstanceOf(Error);
      const client = await connectNbd(gateway.nbdPort, "locked");
      expect((await client.read(0, data.length)).equals(data)).toBe(true);
      await client.close();
    }));

  it("neither the master key nor any passphrase appears in the gateway's logs or the CLI's output", () => {
    const logText = gateway
      .logs()
      .map((line) => JSON.stringify(line))
      .join("\n");
    expect(gateway.logs().length).toBeGreaterThan(20);
    const secrets = [MASTER_KEY.toString("base64"), MASTER_KEY.toString("hex"), PASSPHRASE, NEW_PASSPHRASE];
    for (const secret of secrets) {
      expect(logText.includes(secret), "a secret in the gateway log").toBe(false);
      expect(cliOutput.join("\n").includes(secret), "a secret in the CLI output").toBe(false);
    }
  });
});
