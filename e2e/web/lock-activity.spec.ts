/**
 * Issue 23 acceptance 5 (lock, unlock, account activity) in a real browser against the shared stack:
 * a passphrase-only volume is attached over TLS by a real client (nbdinfo), locked from its page after
 * a confirmation that says what a lock does (the client is then refused), unlocked with its passphrase
 * (attached again), and the account's activity page lists the sign-in, sign-out, attaches, detaches,
 * lock and unlock. Screenshots in e2e/web/screenshots/lock-activity-*.png.
 */
import { mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "@playwright/test";
import { argv, tlsUri } from "@stratus/control";
import { run, runOk } from "../harness/exec";
import { createTestDevice } from "./support/device-credential";
import { readStack } from "./support/state";

const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), "screenshots");
const EMAIL = "lock@example.test";
const PASSWORD = "lock-and-unlock-42";
const PASSPHRASE = "the passphrase of the locked disk";
const VOLUME = "lockdisk";
const DEVICE = "lock e2e laptop";

test("lock and unlock a volume from its page; the account activity lists it all", async ({ page }) => {
  const stack = readStack();
  mkdirSync(SCREENSHOTS, { recursive: true });
  const snap = (name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `lock-activity-${name}.png`), fullPage: true });

  // Sign up, sign out and sign in again: the activity shows both sign-ins and the sign-out.
  await page.goto(`${stack.webUrl}/sign-up`);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Confirm password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/volumes$/);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/volumes$/);

  await page.goto(`${stack.webUrl}/volumes/new`);
  await page.getByLabel("Name", { exact: true }).fill(VOLUME);
  await page.getByLabel("Size", { exact: true }).fill("64");
  await page.getByLabel("Unit").selectOption("MiB");
  await page.getByLabel("Passphrase", { exact: true }).fill(PASSPHRASE);
  await page.getByLabel("Confirm passphrase").fill(PASSPHRASE);
  await page.getByLabel("Unlock automatically after a restart").uncheck();
  await page.getByRole("button", { name: "Create volume" }).click();
  await expect(page).toHaveURL(new RegExp(`/volumes/${VOLUME}\\?created=1$`));

  // A real client over TLS with a device credential: attached, then detached when it exits.
  const device = await createTestDevice(stack, EMAIL, DEVICE);
  const [uri] = argv([tlsUri({ host: "127.0.0.1", port: stack.nbdPort }, VOLUME, device, "psk")], os.homedir());
  const size = () => run("nbdinfo", ["--size", uri!], { timeoutMs: 30_000 });
  expect((await runOk("nbdinfo", ["--size", uri!], { timeoutMs: 30_000 })).trim()).toBe(String(64 * 2 ** 20));

  // The card's title says the state: "Unlocked" (with the lock button) or "Locked" (with the unlock form).
  const card = page.getByRole("region", { name: /^(Unlocked|Locked)$/ });
  await expect(card.getByRole("heading", { name: "Unlocked" })).toBeVisible();
  await card.getByRole("button", { name: "Lock", exact: true }).click();
  await expect(card).toContainText("the next attach needs the passphrase");
  await expect(card).toContainText("commits what was written, closes the volume and drops its cached (decrypted) data");
  await snap("01-confirm-lock");
  await card.getByRole("button", { name: "Confirm lock" }).click();
  await expect(card).toContainText(`Locked volume ${VOLUME}: its gateway commits and closes it and drops its cached data`);
  await expect(card.getByRole("heading", { name: "Locked" })).toBeVisible();
  await snap("02-locked");
  // Locked: the gateway has no key for it, so the client is refused.
  expect((await size()).code).not.toBe(0);

  await card.getByLabel("Passphrase").fill(PASSPHRASE);
  await card.getByRole("button", { name: "Unlock" }).click();
  await expect(card).toContainText("Unlocked: clients can attach now.");
  await expect(card.getByRole("heading", { name: "Unlocked" })).toBeVisible();
  expect((await runOk("nbdinfo", ["--size", uri!], { timeoutMs: 30_000 })).trim()).toBe(String(64 * 2 ** 20));
  await expect(page.getByRole("region", { name: "Activity" })).toContainText(`Attached by ${DEVICE}`);

  await page.getByRole("link", { name: "Activity", exact: true }).click();
  await expect(page).toHaveURL(/\/activity$/);
  const list = page.getByRole("list", { name: "Account activity, newest first" });
  // Both attaches and detaches (the detach is written once the client's connection closed).
  await expect(list.locator('li[data-action="volume.detached"]')).toHaveCount(2);
  const lines = (await list.locator("li").allInnerTexts()).map((line) => line.split("\n")[0]!.trim());
  expect(lines).toEqual([
    `${VOLUME}: Detached from ${DEVICE} · via device over TLS`,
    `${VOLUME}: Attached by ${DEVICE} · via device over TLS`,
    `${VOLUME}: Unlocked · via dashboard`,
    `${VOLUME}: Locked · via dashboard`,
    `${VOLUME}: Detached from ${DEVICE} · via device over TLS`,
    `${VOLUME}: Attached by ${DEVICE} · via device over TLS`,
    `Created device ${DEVICE} · via dashboard`,
    `${VOLUME}: Created (64 MiB) · via dashboard`,
    "Signed in · via dashboard",
    "Signed out · via dashboard",
    "Signed in · via dashboard",
  ]);
  await snap("03-account-activity");
  await list.getByRole("link", { name: VOLUME }).first().click();
  await expect(page).toHaveURL(new RegExp(`/volumes/${VOLUME}$`));
});
