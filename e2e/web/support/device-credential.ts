/**
 * A device credential of a dashboard user, made through the control verb with the stack's own settings
 * (database, master key), and written out as the device folder every client reads. Plaintext NBD serves
 * only the local admin, so a signed-up user's volumes are attached over TLS with one of these.
 */
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createDeviceCredential, deviceFiles, openRuntime, type DeviceCredentialRef } from "@stratus/control";
import { findUserByEmail } from "@stratus/db";
import type { StackInfo } from "./stack";

export interface TestDevice extends DeviceCredentialRef {
  /** The PSK in hex (for the secrets grep). */
  pskKeyHex: string;
}

export async function createTestDevice(stack: StackInfo, email: string, name: string): Promise<TestDevice> {
  const workDir = await mkdtemp(path.join(os.tmpdir(), "stratus-web-device-"));
  const runtime = await openRuntime({
    dataDir: path.join(workDir, "runtime"),
    database: { kind: "postgres", url: stack.env.DATABASE_URL! },
    store: { kind: "s3", ...stack.s3, forcePathStyle: true },
    redisUrl: stack.env.REDIS_URL!,
    masterKey: Buffer.from(stack.masterKey, "base64"),
    settings: { prefix: stack.env.STRATUS_QUEUE_PREFIX!, gcGraceMs: 0, nbd: { host: "127.0.0.1", port: stack.nbdPort, tls: true }, embedded: false },
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  try {
    const user = await findUserByEmail(runtime.database.db, email);
    if (!user) throw new Error(`no user ${email}`);
    const created = await createDeviceCredential({ runtime, actor: { userId: user.id, via: "session", scope: "write" } }, { name });
    const dir = path.join(workDir, "device");
    await mkdir(dir, { mode: 0o700 });
    for (const file of deviceFiles(created.secret)) await writeFile(path.join(dir, file.name), file.content, { mode: file.mode });
    return { id: created.credential.id, name, dir, pskKeyHex: created.secret.pskKeyHex };
  } finally {
    await runtime.close();
  }
}
