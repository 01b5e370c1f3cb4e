/**
 * A device folder on disk: written with the folder 0700 and keys 0600 even under a permissive umask,
 * never over existing files, and its identity read back from keys.psk (so a dashboard download
 * unpacked there is reused the same way). Attachment records round-trip and are forgotten.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CliError } from "../api-client";
import { forgetAttachment, listAttachments, saveAttachment } from "./attachments";
import { assertFreeFolder, readDeviceIdentity, writeDeviceFolder } from "./device-folder";

const secret = { pskFile: "dev_abc:00ff\n", caCertPem: "CA\n", clientCertPem: "CERT\n", clientKeyPem: "KEY\n" };

describe("device folders", () => {
  const dirs: string[] = [];
  const fresh = async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "stratus-device-folder-"));
    dirs.push(dir);
    return dir;
  };
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("writes the folder 0700 and the keys 0600, whatever the umask", async () => {
    const dir = path.join(await fresh(), "laptop");
    const old = process.umask(0o000);
    try {
      await writeDeviceFolder(dir, secret);
    } finally {
      process.umask(old);
    }
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const [file, mode] of [
      ["keys.psk", 0o600],
      ["client-key.pem", 0o600],
      ["client-cert.pem", 0o600],
      ["ca-cert.pem", 0o644],
    ] as const) {
      expect((await stat(path.join(dir, file))).mode & 0o777, file).toBe(mode);
    }
    expect(await readFile(path.join(dir, "client-key.pem"), "utf8")).toBe("KEY\n");
    expect(await readDeviceIdentity(dir)).toBe("dev_abc");
  });

  it("never writes over an existing credential", async () => {
    const dir = await fresh();
    await writeFile(path.join(dir, "keys.psk"), "dev_old:11\n");
    await expect(assertFreeFolder(dir)).rejects.toThrow(CliError);
    await expect(writeDeviceFolder(dir, secret)).rejects.toThrow(/EEXIST/);
    expect(await readDeviceIdentity(dir)).toBe("dev_old");
    await expect(assertFreeFolder(path.join(dir, "missing"))).resolves.toBeUndefined();
  });

  it("has no identity without keys.psk, and refuses a file that is not one", async () => {
    const dir = await fresh();
    expect(await readDeviceIdentity(dir)).toBeUndefined();
    await writeFile(path.join(dir, "keys.psk"), "\n");
    await expect(readDeviceIdentity(dir)).rejects.toThrow(/not a PSK file/);
  });

  it("keeps attachment records until they are forgotten", async () => {
    const dir = path.join(await fresh(), "attachments");
    const record = { volume: "db1", deviceId: "dev_abc", kind: "fuse" as const, target: "/mnt/db1", pid: 42, at: new Date(0).toISOString() };
    await saveAttachment(dir, record);
    await saveAttachment(dir, { ...record, kind: "nbd", target: "/dev/nbd1", pid: undefined });
    expect((await listAttachments(dir)).map((a) => a.target).sort()).toEqual(["/dev/nbd1", "/mnt/db1"]);
    await forgetAttachment(dir, "/mnt/db1");
    expect(await listAttachments(dir)).toEqual([expect.objectContaining({ target: "/dev/nbd1", kind: "nbd" })]);
    expect(await listAttachments(path.join(dir, "none"))).toEqual([]);
  });
});
