/**
 * `stratus attach` from another machine (issue 20 acceptance 4): the scaled-out stack serves NBD and the
 * API on a veth address (so the gateway requires TLS); the CLI runs in another network namespace with
 * only STRATUS_URL and STRATUS_TOKEN. `stratus attach VOL --fuse DIR` creates the machine's device
 * credential under ~/.config/stratus (0600) and serves DIR/disk.img through nbdfuse over TLS-PSK; ext4
 * goes on it through a loop device; `stratus detach` takes it down; a second attach reuses the
 * credential and the data is there. nbd-client is not driven (no kernel NBD here): the command
 * `stratus attach --print-only` would run is checked. A revoked credential is refused by name.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachLoop, CleanupStack, isMounted, mountExt4, run, runOk, REPO_ROOT, STRATUS_BIN } from "../harness";
import { createPeerNamespace, type PeerNamespace } from "../web/support/peer-namespace";
import { startStack, type RunningStack } from "../web/support/stack";

const VOLUME = "laptopfs";
const DEVICE = "laptop";
const cleanup = new CleanupStack();
let stack: RunningStack;
let peer: PeerNamespace;
let work: string;
let home: string;
let token: string;

beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, "apps/web/.next/BUILD_ID"))) {
    await runOk("npm", ["run", "build", "-w", "@stratus/web"], { cwd: REPO_ROOT, timeoutMs: 300_000, env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" } });
  }
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-attach-cli-"));
  cleanup.push("remove work folder", () => rm(work, { recursive: true, force: true }));
  home = path.join(work, "home");
  peer = await createPeerNamespace("attcli", "10.79.32");
  cleanup.push("remove the peer namespace", () => peer.remove());
  stack = await startStack({
    name: "attach-cli",
    nbdHost: peer.hostAddress,
    webHost: peer.hostAddress,
    env: { STRATUS_CACHE_SIZE: "256M", STRATUS_DIRTY_LIMIT: "64M" },
  });
  cleanup.push("stop the stack", () => stack.stop());
  token = (await readFile(path.join(stack.gatewayDataDir, "cli-token"), "utf8")).trim();
}, 300_000);

afterAll(() => cleanup.runAll());

/**
 * The CLI on "the laptop": the peer's network only (nsenter --net, so its FUSE mount is visible to the
 * test), its own $HOME, and nothing but the server's URL and a token.
 */
function stratus(args: string[]) {
  return run(peer.enterNet[0]!, [...peer.enterNet.slice(1), process.execPath, STRATUS_BIN, "--insecure", ...args], {
    cwd: work,
    env: { PATH: process.env.PATH, HOME: home, STRATUS_URL: stack.webUrl, STRATUS_TOKEN: token },
    timeoutMs: 90_000,
  });
}
async function stratusOk(args: string[]): Promise<string> {
  const result = await stratus(args);
  expect(result.code, `stratus ${args.join(" ")}\n${result.stderr}`).toBe(0);
  return result.stdout;
}

describe("stratus attach / detach from another network namespace", () => {
  const fuseDir = () => path.join(work, "fuse");
  const mountDir = () => path.join(work, "mnt");
  const deviceDir = () => path.join(home, ".config/stratus/devices", DEVICE);

  /** loop + ext4 on the attached file; returns the undo (unmount, then free the loop device). */
  async function mountDisk(): Promise<() => Promise<void>> {
    const loop = await attachLoop(path.join(fuseDir(), "disk.img"));
    const detachLoop = cleanup.push(`loop ${loop.device}`, () => loop.detach());
    const mount = await mountExt4(loop.device, mountDir());
    const unmount = cleanup.push(`unmount ${mountDir()}`, () => mount.unmount());
    return async () => {
      await unmount();
      await detachLoop();
    };
  }

  it("attaches with --fuse, keeps ext4 data across detach and reattach, and reuses the credential", async () => {
    await stratusOk(["volume", "create", VOLUME, "--size", "256M", "--no-passphrase"]);

    const first = await stratusOk(["attach", VOLUME, "--device", DEVICE, "--fuse", fuseDir()]);
    cleanup.push("detach (if the test failed halfway)", async () => void (await stratus(["detach", fuseDir()])));
    expect(first).toMatch(new RegExp(`created device credential ${DEVICE} \\(dev_\\w+\\)`));
    expect(first).toContain(`attached volume ${VOLUME} as ${path.join(fuseDir(), "disk.img")}`);
    expect(first).toContain(`detach with: stratus detach ${fuseDir()}`);
    expect(statSync(deviceDir()).mode & 0o777).toBe(0o700);
    for (const file of ["keys.psk", "client-key.pem", "client-cert.pem"]) expect(statSync(path.join(deviceDir(), file)).mode & 0o777, file).toBe(0o600);
    expect(statSync(path.join(fuseDir(), "disk.img")).size).toBe(256 * 2 ** 20);

    await runOk("mkfs.ext4", ["-q", "-F", path.join(fuseDir(), "disk.img")], { timeoutMs: 120_000 });
    let release = await mountDisk();
    const data = randomBytes(3 * 2 ** 20);
    await writeFile(path.join(mountDir(), "notes.bin"), data);
    await release();

    const detached = await stratusOk(["detach", fuseDir()]);
    expect(detached).toContain(`detached volume ${VOLUME} from ${fuseDir()}`);
    expect(await isMounted(fuseDir())).toBe(false);

    const second = await stratusOk(["attach", VOLUME, "--device", DEVICE, "--fuse", fuseDir()]);
    expect(second).not.toContain("created device credential");
    release = await mountDisk();
    const back = await readFile(path.join(mountDir(), "notes.bin"));
    expect(createHash("sha256").update(back).digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
    await release();
    await runOk("e2fsck", ["-fn", path.join(fuseDir(), "disk.img")], { timeoutMs: 120_000 });
    expect(await stratusOk(["detach", VOLUME])).toContain(`detached volume ${VOLUME}`);
    expect(await isMounted(fuseDir())).toBe(false);

    const devices = JSON.parse(await stratusOk(["device", "list", "--json"])) as Array<{ name: string; status: string; lastUsedAt: string | null }>;
    expect(devices).toEqual([expect.objectContaining({ name: DEVICE, status: "active" })]);
    expect(devices[0]!.lastUsedAt).not.toBeNull();
  });

  it("prints the nbd-client command it would run (X.509 files of this machine's credential)", async () => {
    const printed = (await stratusOk(["attach", VOLUME, "--device", DEVICE, "--print-only", "--nbd-device", "/dev/nbd3"])).trim();
    expect(printed).toBe(
      [
        "nbd-client",
        peer.hostAddress,
        String(stack.nbdPort),
        "/dev/nbd3",
        "-N",
        VOLUME,
        "-certfile",
        path.join(deviceDir(), "client-cert.pem"),
        "-keyfile",
        path.join(deviceDir(), "client-key.pem"),
        "-cacertfile",
        path.join(deviceDir(), "ca-cert.pem"),
      ].join(" "),
    );
  });

  it("refuses a revoked credential, saying how to get a new one", async () => {
    expect(await stratusOk(["device", "revoke", DEVICE])).toMatch(new RegExp(`revoked device credential ${DEVICE} \\(dev_\\w+\\)`));
    const refused = await stratus(["attach", VOLUME, "--device", DEVICE, "--fuse", fuseDir()]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`device credential ${DEVICE} is revoked: remove ${deviceDir()}`);
    expect(await isMounted(fuseDir())).toBe(false);
  });
});
