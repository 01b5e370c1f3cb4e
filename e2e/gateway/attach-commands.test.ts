/**
 * The TLS attach commands Stratus prints, run exactly as printed (bash -c, in a shell whose $HOME holds
 * the device folder) by the real clients — nbdinfo, nbdcopy, qemu-img — against a TLS-only NBD peer,
 * nbdkit with `--tls=require`: TLS-PSK, and X.509 with a throwaway CA and `--tls-verify-peer`. This pins
 * the clients' syntax independently of our server; the gateway's own TLS is driven in the device tests.
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import {
  argv,
  defaultDeviceDir,
  DEVICE_FILE_NAMES,
  deviceFolderName,
  tlsAttachCommands,
  tlsUri,
  type DeviceCredentialRef,
  type TlsForm,
} from "@stratus/control";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canConnect, freePort, run, runOk, waitFor } from "../harness";

const DEVICE = "test box";
const IMAGE_BYTES = 2 ** 20;

describe("printed TLS attach commands against nbdkit --tls=require", () => {
  let work: string;
  let home: string;
  let deviceDir: string;
  const servers: ChildProcess[] = [];
  const identity = `dev_${randomBytes(6).toString("hex")}`;
  const device: DeviceCredentialRef = { id: identity, name: DEVICE, dir: defaultDeviceDir(DEVICE) };

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), "stratus-attach-commands-"));
    home = path.join(work, "home");
    deviceDir = path.join(home, ".config/stratus/devices", deviceFolderName(DEVICE));
    await mkdir(deviceDir, { recursive: true, mode: 0o700 });
    await mkdir(path.join(work, "server"));
    await writeFile(path.join(deviceDir, DEVICE_FILE_NAMES.psk), `${identity}:${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
    await makeCertificates();
    await writeFile(path.join(work, "disk.img"), randomBytes(IMAGE_BYTES));
  });
  afterAll(async () => {
    for (const server of servers) server.kill("SIGKILL");
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A throwaway CA; a server certificate for 127.0.0.1; a client certificate with CN = the identity. */
  async function makeCertificates(): Promise<void> {
    const ssl = (args: string[]) => runOk("openssl", args, { cwd: work });
    const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    const sign = (csr: string, out: string, ext: string) =>
      ssl(["x509", "-req", "-in", csr, "-CA", "server/ca-cert.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", out, "-days", "2", "-extfile", ext]);
    await ssl(["req", "-x509", ...ecKey, "-keyout", "ca.key", "-out", "server/ca-cert.pem", "-subj", "/CN=throwaway test CA", "-days", "2"]);
    await writeFile(path.join(work, "server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    await ssl(["req", ...ecKey, "-keyout", "server/server-key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    await sign("server.csr", "server/server-cert.pem", "server.ext");
    await writeFile(path.join(work, "client.ext"), "extendedKeyUsage=clientAuth\n");
    await ssl(["req", ...ecKey, "-keyout", path.join(deviceDir, DEVICE_FILE_NAMES.clientKey), "-out", "client.csr", "-subj", `/CN=${identity}`]);
    await sign("client.csr", path.join(deviceDir, DEVICE_FILE_NAMES.clientCert), "client.ext");
    await runOk("cp", [path.join(work, "server/ca-cert.pem"), path.join(deviceDir, DEVICE_FILE_NAMES.caCert)]);
  }

  async function startNbdkit(form: TlsForm): Promise<number> {
    const port = await freePort();
    const tls =
      form === "psk" ? [`--tls-psk=${path.join(deviceDir, DEVICE_FILE_NAMES.psk)}`] : [`--tls-certificates=${path.join(work, "server")}`, "--tls-verify-peer"];
    const child = spawn("nbdkit", ["-f", "-i", "127.0.0.1", "-p", String(port), "--tls=require", ...tls, "memory", "8M"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    servers.push(child);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    await waitFor(`nbdkit on ${port}`, async () => {
      if (child.exitCode !== null) throw new Error(`nbdkit exited: ${stderr}`);
      return (await canConnect(port)) || undefined;
    });
    return port;
  }

  /** Runs a printed command as printed, in a shell whose $HOME holds the device folder. */
  const runPrinted = (command: string) => runOk("bash", ["-c", command], { cwd: work, env: { PATH: process.env.PATH, HOME: home }, timeoutMs: 30_000 });

  it.each(["psk", "x509"] as const)("%s: nbdinfo, nbdcopy and qemu-img work as printed, and the data arrives", async (form) => {
    const port = await startNbdkit(form);
    const endpoint = { host: "127.0.0.1", port };
    const commands = tlsAttachCommands(endpoint, "db1", device);
    const command = (tool: string) => commands.find((c) => c.id === `${tool}-${form}`)!.command;
    expect(await runPrinted(command("nbdinfo"))).toMatch(/export-size: 8388608/);
    await runPrinted(command("nbdcopy"));
    expect(await runPrinted(command("qemu-img"))).toMatch(/virtual size: 8 MiB/);
    const uri = argv([tlsUri(endpoint, "db1", device, form)], home)[0]!;
    await runOk("nbdcopy", ["--", uri, path.join(work, `back-${form}.img`)]);
    await runOk("cmp", ["-n", String(IMAGE_BYTES), path.join(work, "disk.img"), path.join(work, `back-${form}.img`)]);
    if (form === "x509") {
      // The server really checks the client certificate: without one it refuses.
      const bare = await run("nbdinfo", [`nbds://127.0.0.1:${port}/db1?tls-certificates=${path.join(work, "server")}`], { timeoutMs: 30_000 });
      expect(bare.code).not.toBe(0);
    }
  });
});
