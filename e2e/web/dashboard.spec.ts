/**
 * Issue 4 acceptance 1, one flow in a real browser against the production build: sign up -> create
 * an encrypted volume -> copy its attach commands; plaintext NBD serves only the local admin, so they
 * are refused for this user, who attaches over TLS with a device credential (nbdinfo, then nbdcopy of
 * seeded random data with --flush) -> the list shows it attached and its stored bytes rising -> resize ->
 * change the passphrase -> an API token used by the CLI, then revoked and refused -> sign out and in
 * -> delete, and the bucket holds none of its objects. Every page is screenshotted
 * (e2e/web/screenshots/) and its HTML, every API answer and both processes' logs are grepped for the
 * password, the passphrases and the token secret (allowed only on its one-time display).
 */
import { mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test, type Response } from "@playwright/test";
import { argv, tlsAttachCommands, tlsUri } from "@stratus/control";
import { S3ObjectStore } from "@stratus/storage/s3-store";
import { listObjects } from "../harness/bucket";
import { run, runOk } from "../harness/exec";
import { REPO_ROOT, STRATUS_BIN } from "../harness/repo";
import { createTestDevice, type TestDevice } from "./support/device-credential";
import { startNbdcopy } from "./support/nbdcopy";
import { SecretGuard } from "./support/secrets";
import { seededBytes } from "./support/seeded-data";
import { parseShownBytes } from "./support/sizes";
import { readStack } from "./support/state";

const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), "screenshots");
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const DATA_BYTES = 8 * MiB;

const EMAIL = "ada@example.test";
const PASSWORD = "correct-horse-battery-9";
const PASSPHRASE = "first passphrase of the disk";
const NEW_PASSPHRASE = "second passphrase, rotated";
const WRONG_PASSPHRASE = "not the passphrase at all";
const VOLUME = "webdisk";

test("dashboard: sign up, volume with a real NBD client, resize, passphrase, API token with the CLI, delete", async ({ page, context }) => {
  const stack = readStack();
  const guard = new SecretGuard();
  guard.add("password", PASSWORD);
  guard.add("passphrase", PASSPHRASE);
  guard.add("new passphrase", NEW_PASSPHRASE);
  guard.add("wrong passphrase", WRONG_PASSPHRASE);
  mkdirSync(SCREENSHOTS, { recursive: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: stack.webUrl });

  // Every HTML document and API answer the browser receives, checked for secrets at the end.
  const answers: Promise<{ url: string; body: string }>[] = [];
  page.on("response", (response: Response) => {
    const type = response.request().resourceType();
    if (type !== "document" && !response.url().includes("/api/")) return;
    answers.push(
      response.text().then(
        (body) => ({ url: response.url(), body }),
        () => ({ url: response.url(), body: "" }),
      ),
    );
  });
  let shots = 0;
  const snap = async (name: string, allow: string[] = []) => {
    shots++;
    await page.screenshot({ path: path.join(SCREENSHOTS, `${String(shots).padStart(2, "0")}-${name}.png`), fullPage: true });
    guard.assertAbsent(await page.content(), `the HTML of ${name}`, allow);
  };
  const clipboard = () => page.evaluate<string>("navigator.clipboard.readText()");
  const cli = (args: string[], token: string) =>
    run(process.execPath, [STRATUS_BIN, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, STRATUS_URL: stack.webUrl, STRATUS_TOKEN: token },
      timeoutMs: 60_000,
    });

  await test.step("sign up (a field error first, then an account)", async () => {
    await page.goto(`${stack.webUrl}/volumes`);
    await expect(page).toHaveURL(/\/sign-in/);
    await page.getByRole("link", { name: "Create an account" }).click();
    // A client-side navigation: the sign-in form is still there until the new page renders.
    await expect(page.getByRole("heading", { name: "Create your account" })).toBeVisible();
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Confirm password").fill(`${PASSWORD}x`);
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page.getByLabel("Confirm password")).toHaveAttribute("aria-invalid", "true");
    await expect(page.getByText("The passwords do not match.")).toBeVisible();
    await snap("sign-up-error");
    await page.getByLabel("Confirm password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page).toHaveURL(/\/volumes$/);
    await expect(page.getByText("No volumes yet")).toBeVisible();
    await expect(page.getByText(EMAIL)).toBeVisible();
    await snap("volumes-empty");
  });

  await test.step("create an encrypted volume", async () => {
    await page.getByRole("link", { name: "Create volume" }).first().click();
    await expect(page.getByRole("heading", { name: "Create volume" })).toBeVisible();
    await page.getByLabel("Name", { exact: true }).fill(VOLUME);
    await page.getByLabel("Size", { exact: true }).fill("10");
    await page.getByLabel("Unit").selectOption("GiB");
    await page.getByLabel("Chunk size").selectOption({ label: "1 MiB" });
    await page.getByLabel("Compression").selectOption("zstd");
    await page.getByLabel("Local (faster)").check();
    await page.getByLabel("Passphrase", { exact: true }).fill(PASSPHRASE);
    await page.getByLabel("Confirm passphrase").fill(PASSPHRASE);
    await expect(page.getByLabel("Unlock automatically after a restart")).toBeChecked();
    await snap("volume-create");
    await page.getByRole("button", { name: "Create volume" }).click();
    await expect(page).toHaveURL(new RegExp(`/volumes/${VOLUME}\\?created=1$`));
    await expect(page.getByText("Volume created.")).toBeVisible();
    await expect(page.getByTestId("attach-command-nbdinfo")).toContainText(`nbd://127.0.0.1:${stack.nbdPort}/${VOLUME}`);
    await snap("volume-created");
  });

  const volumeId = (await page.getByTestId("volume-id").innerText()).trim();
  expect(volumeId).toMatch(/^vol_/);
  // This user is not the local admin: their volumes are served over TLS, to a device credential.
  const device: TestDevice = await createTestDevice(stack, EMAIL, "web e2e laptop");
  guard.add("device PSK", device.pskKeyHex);
  const endpoint = { host: "127.0.0.1", port: stack.nbdPort };
  const tlsCommand = (id: string) => tlsAttachCommands(endpoint, VOLUME, device).find((c) => c.id === id)!.command;
  const [pskUri] = argv([tlsUri(endpoint, VOLUME, device, "psk")], os.homedir());

  await test.step("copy the attach commands; plaintext is refused to this user, TLS with a device credential attaches", async () => {
    await page.getByRole("button", { name: "Copy the Inspect (libnbd nbdinfo) command" }).click();
    await expect(page.getByRole("button", { name: "Copy the Inspect (libnbd nbdinfo) command" })).toContainText("Copied");
    const nbdinfo = await clipboard();
    expect(nbdinfo).toBe((await page.getByTestId("attach-command-nbdinfo").innerText()).trim());
    // Plaintext NBD serves only the local admin's volumes: this one answers as unknown.
    expect((await run("bash", ["-c", nbdinfo], { timeoutMs: 30_000 })).code).not.toBe(0);
    const info = await runOk("bash", ["-c", tlsCommand("nbdinfo-psk")], { timeoutMs: 30_000 });
    expect(info).toContain(`export="${VOLUME}"`);
    expect(info).toMatch(new RegExp(`export-size: ${10 * GiB}\\b`));

    await page.getByRole("button", { name: "Copy the Copy an image in (libnbd nbdcopy) command" }).click();
    const nbdcopy = await clipboard();
    expect(nbdcopy).toMatch(/^nbdcopy disk\.img nbd:\/\//);
    // The TLS command with standard input as its image, so the client stays attached while the
    // page is checked; --flush makes the data durable before it exits.
    const copy = startNbdcopy(tlsCommand("nbdcopy-psk").replace(/^nbdcopy disk\.img /, "nbdcopy --flush - "), { asCommand: true });
    try {
      await copy.write(seededBytes("web e2e", DATA_BYTES));

      await page.getByRole("link", { name: "Volumes", exact: true }).click();
      const row = page.locator(`tr[data-volume="${VOLUME}"]`);
      const stored = row.getByTestId("stored-bytes");
      await expect(stored).toHaveText("0 B");
      await expect(row.getByTestId("attached")).toContainText("1 connection", { timeout: 30_000 });
      await expect(row.getByText("Attached", { exact: true })).toBeVisible();
      await snap("volumes-attached");

      expect(await copy.finish()).toBe(0);
      // Rising without a reload: the table polls the live state.
      await expect.poll(async () => parseShownBytes(await stored.innerText()) ?? 0, { timeout: 30_000 }).toBeGreaterThanOrEqual(DATA_BYTES);
      await snap("volumes-stored");
    } finally {
      copy.kill();
    }
  });

  await test.step("the detail page: figures, activity, and charts while a client writes", async () => {
    await page.getByRole("link", { name: VOLUME }).click();
    await expect.poll(async () => parseShownBytes(await page.getByTestId("detail-stored-bytes").innerText()) ?? 0).toBeGreaterThanOrEqual(DATA_BYTES);
    await expect(page.getByRole("region", { name: "Activity" })).toContainText("Created");
    // The same data again, with the client left attached until the gateway has sampled it twice.
    const client = startNbdcopy(pskUri!);
    try {
      await client.write(seededBytes("web e2e", DATA_BYTES));
      await expect(page.getByTestId("detail-attached")).toContainText("1 connection");
      await expect(page.getByRole("img", { name: /^Stored bytes\./ })).toBeVisible({ timeout: 45_000 });
      const throughput = page.getByRole("img", { name: /^Throughput\./ });
      await expect(throughput).toBeVisible();
      // More data while attached: the next sample shows it as write throughput.
      await client.write(seededBytes("web e2e more", 4 * MiB));
      await expect(throughput).toHaveAttribute("aria-label", /Written: [^;]*peak [1-9]/, { timeout: 45_000 });
      await snap("volume-detail-charts");
      expect(await client.finish()).toBe(0);
    } finally {
      client.kill();
    }
  });

  await test.step("resize (grow)", async () => {
    const resize = page.getByRole("region", { name: "Resize" });
    await resize.getByLabel("New size").fill("20");
    await resize.getByLabel("Unit").selectOption("GiB");
    await resize.getByRole("button", { name: "Resize" }).click();
    await expect(resize.getByText("Resized to 20 GiB.")).toBeVisible();
    await expect(page.getByRole("heading", { level: 1 }).locator("..")).toContainText("20 GiB");
    const info = await runOk("nbdinfo", ["--size", pskUri!], { timeoutMs: 30_000 });
    expect(Number(info.trim())).toBe(20 * GiB);
  });

  await test.step("change the passphrase (a wrong one is refused next to its field)", async () => {
    const form = page.getByRole("region", { name: "Change passphrase" });
    await form.getByLabel("Current passphrase").fill(WRONG_PASSPHRASE);
    await form.getByLabel("New passphrase", { exact: true }).fill(NEW_PASSPHRASE);
    await form.getByLabel("Confirm new passphrase").fill(NEW_PASSPHRASE);
    await form.getByRole("button", { name: "Change passphrase" }).click();
    await expect(form.getByText(/wrong passphrase/i)).toBeVisible();
    await snap("volume-passphrase-error");
    await form.getByLabel("Current passphrase").fill(PASSPHRASE);
    await form.getByLabel("New passphrase", { exact: true }).fill(NEW_PASSPHRASE);
    await form.getByLabel("Confirm new passphrase").fill(NEW_PASSPHRASE);
    await form.getByRole("button", { name: "Change passphrase" }).click();
    await expect(form.getByText("Passphrase changed.", { exact: false })).toBeVisible();
    await expect(page.getByRole("region", { name: "Activity" })).toContainText("Changed the passphrase");
    await snap("volume-resized-passphrase");
  });

  await test.step("an API token works from the CLI, then is revoked and refused", async () => {
    await page.getByRole("link", { name: "API tokens" }).first().click();
    await expect(page.getByText("No tokens yet.")).toBeVisible();
    await page.getByLabel("Name").fill("ci script");
    await page.getByLabel("Scope").selectOption("write");
    await page.getByRole("button", { name: "Create token" }).click();
    const secretText = (await page.getByTestId("token-secret").innerText()).trim();
    expect(secretText).toMatch(/^stratus_[1-9A-HJ-NP-Za-km-z]{8}_[A-Za-z0-9_-]{43}$/);
    await page.getByRole("button", { name: "Copy the token" }).click();
    const secret = await clipboard();
    expect(secret).toBe(secretText);
    guard.add("token secret", secret);
    await snap("token-created", ["token secret"]);

    const listed = await cli(["volume", "list"], secret);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(VOLUME);

    await page.getByRole("button", { name: "Done, I have copied it" }).click();
    // The click returns before React re-renders: wait until the one-time display is gone.
    await expect(page.getByTestId("token-secret")).toHaveCount(0);
    guard.assertAbsent(await page.content(), "the tokens page after the one-time display");
    const row = page.locator('tr[data-token="ci script"]');
    await expect(row).toContainText(`stratus_${secret.split("_")[1]}_…`);
    await page.reload();
    await expect(row.getByTestId("token-last-used")).not.toHaveText("Never");
    await snap("tokens-used");

    await page.getByRole("button", { name: "Revoke ci script" }).click();
    await page.getByRole("button", { name: "Confirm revoke" }).click();
    await expect(page.getByText("Token “ci script” revoked")).toBeVisible();
    await expect(row).toContainText("Revoked");
    await snap("tokens-revoked");

    const refused = await cli(["volume", "list"], secret);
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).not.toContain(VOLUME);
    expect(refused.stderr + refused.stdout).toMatch(/unauthori[sz]ed|revoked|invalid|401/i);
  });

  await test.step("sign out, and back in (a wrong password is refused next to its field)", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await expect(page).toHaveURL(/\/sign-in/);
    await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password").fill(`${PASSWORD}-wrong`);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByText("Wrong email or password.")).toBeVisible();
    await expect(page.getByLabel("Password")).toHaveAttribute("aria-invalid", "true");
    await snap("sign-in-error");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL(/\/volumes$/);
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(page.locator(`tr[data-volume="${VOLUME}"]`)).toBeVisible();
    await snap("volumes-phone");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await test.step("delete the volume: progress until its objects are gone from the bucket", async () => {
    const bucket = new S3ObjectStore({
      bucket: stack.s3.bucket,
      endpoint: stack.s3.endpoint,
      region: stack.s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: stack.s3.accessKeyId, secretAccessKey: stack.s3.secretAccessKey },
    });
    expect((await listObjects(bucket, `vol/${volumeId}/`)).length).toBeGreaterThan(DATA_BYTES / MiB);

    await page.goto(`${stack.webUrl}/volumes/${VOLUME}`);
    // The client left during the copy step; the gateway stops publishing the attachment.
    await expect(page.getByTestId("detail-attached")).toContainText("Not attached", { timeout: 30_000 });
    const danger = page.getByRole("region", { name: "Delete volume" });
    await danger.getByLabel(`Type ${VOLUME} to delete this volume`).fill(VOLUME);
    await danger.getByRole("button", { name: "Delete volume" }).click();
    await expect(page.getByTestId("delete-progress")).toHaveAttribute("data-state", "completed", { timeout: 60_000 });
    await expect(page.getByText(/is deleted: \d+ objects? removed/)).toBeVisible();
    await snap("volume-deleted");
    expect(await listObjects(bucket, `vol/${volumeId}/`)).toEqual([]);
    await page.getByRole("link", { name: "Back to volumes" }).click();
    await expect(page.getByText("No volumes yet")).toBeVisible();
    await snap("volumes-after-delete");
    await bucket.close();
  });

  await test.step("no secret in any page, API answer or log", async () => {
    for (const { url, body } of await Promise.all(answers)) {
      guard.assertAbsent(body, `the answer of ${url}`, url.includes("token.create") ? ["token secret"] : []);
    }
    guard.assertAbsent(readFileSync(stack.logFiles.gateway, "utf8"), "the gateway's log");
    guard.assertAbsent(readFileSync(stack.logFiles.web, "utf8"), "the web app's log");
  });
});
