/**
 * Device credentials in a real browser (issue 20 acceptance 3), against a stack of its own whose gateway
 * serves NBD on a veth address (so TLS is required) with the clients in another network namespace:
 * sign up -> a volume -> Devices: create a credential limited to it, download it once (a tar that
 * unpacks with keys 0600) -> the CA's fingerprint matches the downloaded certificate -> copy the TLS
 * attach commands from the volume's page and run them exactly as copied from the other namespace
 * (nbdinfo with TLS-PSK and with the client certificate, nbdcopy a byte-identical round trip) -> the
 * volume's live state names the device -> revoke it, and the same command is refused. Screenshots of
 * the Devices page go to e2e/web/screenshots/devices-*.png; pages, API answers and logs are grepped for
 * the key material.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test, type Page, type Response } from "@playwright/test";
import { run, runOk } from "../harness/exec";
import { startNbdcopy } from "./support/nbdcopy";
import { createPeerNamespace, type PeerNamespace } from "./support/peer-namespace";
import { SecretGuard } from "./support/secrets";
import { seededBytes } from "./support/seeded-data";
import { startStack, type RunningStack } from "./support/stack";

const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), "screenshots");
const MiB = 2 ** 20;
const EMAIL = "grace@example.test";
const PASSWORD = "devices-password-42";
const VOLUME = "devdisk";
const OTHER_VOLUME = "otherdisk";
const DEVICE = "laptop";

let stack: RunningStack;
let peer: PeerNamespace;
let work: string;
let home: string;

test.beforeAll(async () => {
  test.setTimeout(240_000);
  peer = await createPeerNamespace("webdev", "10.79.31");
  stack = await startStack({ name: "devices", nbdHost: peer.hostAddress });
  work = await mkdtemp(path.join(os.tmpdir(), "stratus-web-devices-"));
  home = path.join(work, "home");
});
test.afterAll(async () => {
  await stack?.stop();
  await peer?.remove();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A copied command run exactly as copied, by bash in the other namespace, as a user whose $HOME is `home`. */
function runThere(command: string) {
  return run(peer.exec[0]!, [...peer.exec.slice(1), "bash", "-c", command], { cwd: work, env: { PATH: process.env.PATH, HOME: home }, timeoutMs: 60_000 });
}

async function createVolume(page: Page, name: string): Promise<void> {
  await page.goto(`${stack.webUrl}/volumes/new`);
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Size", { exact: true }).fill("64");
  await page.getByLabel("Unit").selectOption("MiB");
  await page.getByRole("button", { name: "Create volume" }).click();
  await expect(page).toHaveURL(new RegExp(`/volumes/${name}\\?created=1$`));
}

test("devices: create and download a credential, attach over TLS from another namespace as copied, live state, revoke", async ({ page, context }) => {
  test.setTimeout(240_000);
  const guard = new SecretGuard();
  guard.add("password", PASSWORD);
  mkdirSync(SCREENSHOTS, { recursive: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: stack.webUrl });
  const answers: Promise<{ url: string; body: string }>[] = [];
  page.on("response", (response: Response) => {
    if (response.request().resourceType() !== "document" && !response.url().includes("/api/")) return;
    answers.push(
      response.text().then(
        (body) => ({ url: response.url(), body }),
        () => ({ url: response.url(), body: "" }),
      ),
    );
  });
  let shots = 0;
  const snap = async (name: string) => {
    shots++;
    await page.screenshot({ path: path.join(SCREENSHOTS, `devices-${String(shots).padStart(2, "0")}-${name}.png`), fullPage: true });
    guard.assertAbsent(await page.content(), `the HTML of ${name}`);
  };
  const clipboard = () => page.evaluate<string>("navigator.clipboard.readText()");

  await test.step("sign up and make two volumes", async () => {
    await page.goto(`${stack.webUrl}/sign-up`);
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Confirm password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page).toHaveURL(/\/volumes$/);
    await createVolume(page, VOLUME);
    await createVolume(page, OTHER_VOLUME);
  });

  const tarPath = path.join(work, `stratus-device-${DEVICE}.tar`);
  await test.step("create a device credential limited to one volume, and download it once", async () => {
    await page.getByRole("link", { name: "Devices", exact: true }).first().click();
    await expect(page.getByRole("heading", { name: "Devices", level: 1 })).toBeVisible();
    await expect(page.getByText("No devices yet.")).toBeVisible();
    await page.getByRole("button", { name: "Create device credential" }).click();
    await expect(page.getByText("Name the device")).toBeVisible();
    await page.getByLabel("Device name").fill(DEVICE);
    await page.getByLabel("Only the volumes I choose").check();
    await page.getByTestId("device-volume-choices").getByLabel(VOLUME).check();
    await page.getByLabel("Expires").selectOption("90");
    await snap("create");
    await page.getByRole("button", { name: "Create device credential" }).click();
    await expect(page.getByRole("heading", { name: `Device credential “${DEVICE}” created` })).toBeVisible();
    const download = page.waitForEvent("download");
    await page.getByRole("button", { name: `Download stratus-device-${DEVICE}.tar` }).click();
    await (await download).saveAs(tarPath);

    // Unpacked exactly as the page says, on "the device".
    const unpack = (await page.getByTestId("device-unpack").innerText()).trim();
    const unpacked = await runThere(unpack);
    expect(unpacked.code, unpacked.stderr).toBe(0);
    const dir = path.join(home, ".config/stratus/devices", DEVICE);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const [file, mode] of [
      ["keys.psk", 0o600],
      ["client-key.pem", 0o600],
      ["client-cert.pem", 0o600],
      ["ca-cert.pem", 0o644],
    ] as const) {
      expect(statSync(path.join(dir, file)).mode & 0o777, file).toBe(mode);
    }
    const psk = readFileSync(path.join(dir, "keys.psk"), "utf8");
    expect(psk).toMatch(/^dev_\w+:[0-9a-f]{64}\n$/);
    guard.add("psk key", psk.split(":")[1]!.trim());
    guard.add("client key", readFileSync(path.join(dir, "client-key.pem"), "utf8").split("\n")[1]!);
    await snap("created");
    await page.getByRole("button", { name: "Done, I have saved it" }).click();
    await expect(page.getByTestId("device-unpack")).toHaveCount(0);
    const row = page.locator(`tr[data-device="${DEVICE}"]`);
    await expect(row).toContainText(VOLUME);
    await expect(row.getByTestId("device-status")).toHaveText("Active");
    await expect(row.getByTestId("device-last-used")).toHaveText("Never");
  });

  await test.step("the CA's fingerprint is the downloaded certificate's", async () => {
    const shown = (await page.getByTestId("nbd-ca-fingerprint").innerText()).trim();
    const openssl = await runOk("openssl", [
      "x509",
      "-noout",
      "-fingerprint",
      "-sha256",
      "-in",
      path.join(home, ".config/stratus/devices", DEVICE, "ca-cert.pem"),
    ]);
    expect(openssl.trim()).toBe(`sha256 Fingerprint=${shown}`);
    const download = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download the CA certificate" }).click();
    const caFile = path.join(work, "ca.pem");
    await (await download).saveAs(caFile);
    expect(readFileSync(caFile, "utf8").trim()).toBe(readFileSync(path.join(home, ".config/stratus/devices", DEVICE, "ca-cert.pem"), "utf8").trim());
    await snap("list");
  });

  const copied = async (label: string) => {
    await page.getByRole("button", { name: `Copy the ${label} command` }).click();
    const text = await clipboard();
    expect(text.startsWith("stratus ") || text.includes(stack.nbdPort.toString())).toBe(true);
    return text;
  };
  let nbdinfoPsk = "";
  await test.step("copy the TLS commands from the volume's page and run them as copied, from the other namespace", async () => {
    await page.goto(`${stack.webUrl}/volumes/${VOLUME}`);
    // Off loopback the gateway serves only TLS: the plaintext commands are not offered.
    await expect(page.getByRole("region", { name: "Attach on the gateway's machine" })).toContainText("only over TLS");
    const attach = page.getByRole("region", { name: "Attach from a device" });
    await expect(attach.getByLabel("Device", { exact: true })).toHaveValue(/^dev_/);
    nbdinfoPsk = await copied("Inspect (libnbd nbdinfo, TLS-PSK)");
    expect(nbdinfoPsk).toBe((await page.getByTestId("tls-command-nbdinfo-psk").innerText()).trim());
    expect(nbdinfoPsk).toContain(`nbds://`);
    expect(nbdinfoPsk).toContain(`@${peer.hostAddress}:${stack.nbdPort}/${VOLUME}?tls-psk-file=$HOME/.config/stratus/devices/${DEVICE}/keys.psk`);
    const info = await runThere(nbdinfoPsk);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain(`export="${VOLUME}"`);
    expect(info.stdout).toMatch(/export-size: 67108864\b/);

    const x509 = await runThere(await copied("Inspect (libnbd nbdinfo, client certificate)"));
    expect(x509.code, x509.stderr).toBe(0);
    expect(x509.stdout).toContain(`export="${VOLUME}"`);

    // The other volume is not this device's: the same command naming it is refused.
    const other = await runThere(nbdinfoPsk.replace(`/${VOLUME}?`, `/${OTHER_VOLUME}?`));
    expect(other.code).not.toBe(0);
  });

  await test.step("nbdcopy as copied: the live state names the device; the data comes back byte for byte", async () => {
    const nbdcopy = await copied("Copy an image in (libnbd nbdcopy, TLS-PSK)");
    expect(nbdcopy).toMatch(/^nbdcopy disk\.img "nbds:\/\//);
    const data = seededBytes("devices e2e", 4 * MiB);
    // The copied command reading its image from standard input, so the client stays attached while
    // the page is checked; --flush makes the data durable before it exits.
    const copy = startNbdcopy(nbdcopy.replace(/^nbdcopy disk\.img /, "nbdcopy --flush - "), {
      asCommand: true,
      prefix: peer.exec,
      env: { PATH: process.env.PATH, HOME: home },
    });
    try {
      await copy.write(data);
      await expect(page.getByTestId("detail-attached")).toContainText(DEVICE, { timeout: 30_000 });
      // The lease in the database names the same device as the writer.
      await expect(page.getByTestId("detail-lease")).toContainText(DEVICE);
      await snap("volume-attached");
      expect(await copy.finish()).toBe(0);
    } finally {
      copy.kill();
    }
    await writeFile(path.join(work, "disk.img"), data);
    const back = path.join(work, "back.img");
    const out = await runThere(`${nbdcopy.replace(/^nbdcopy disk\.img (".*")$/, "nbdcopy $1")} ${back}`);
    expect(out.code, out.stderr).toBe(0);
    const sha = (file: string) => createHash("sha256").update(readFileSync(file).subarray(0, data.length)).digest("hex");
    expect(sha(back)).toBe(sha(path.join(work, "disk.img")));
  });

  await test.step("revoke: the list says so, and the copied command is refused", async () => {
    await page.getByRole("link", { name: "Devices", exact: true }).first().click();
    const row = page.locator(`tr[data-device="${DEVICE}"]`);
    await expect(row.getByTestId("device-last-used")).not.toHaveText("Never");
    await page.getByRole("button", { name: `Revoke ${DEVICE}` }).click();
    await page.getByRole("button", { name: "Confirm revoke" }).click();
    await expect(page.getByText(`Device “${DEVICE}” revoked`)).toBeVisible();
    await expect(row.getByTestId("device-status")).toHaveText("Revoked");
    await snap("revoked");
    const refused = await runThere(nbdinfoPsk);
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).not.toContain(`export="${VOLUME}"`);
  });

  await test.step("no key material in any page, API answer or log", async () => {
    for (const { url, body } of await Promise.all(answers)) {
      guard.assertAbsent(body, `the answer of ${url}`, url.includes("devices.create") ? ["psk key", "client key"] : []);
    }
    guard.assertAbsent(readFileSync(stack.logFiles.gateway, "utf8"), "the gateway's log");
    guard.assertAbsent(readFileSync(stack.logFiles.web, "utf8"), "the web app's log");
  });
});
