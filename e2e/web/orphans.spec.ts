/**
 * Issue 22's orphan sets in a real browser, in the scaled-out shape (`next start` apart from the gateway):
 * a set recorded by a gateway elsewhere shows on its volume's page with its size, reason and gateway;
 * this web process does not hold it, so the page shows the CLI command to run on that gateway's host
 * instead of a download; Discard asks for confirmation, then marks it for that gateway to delete.
 * The set's own making, export bytes and deletion are the gateway's tests' business (e2e/gateway/orphans).
 */
import { findOrphanSet, findUserByEmail, findVolumeByName, openDatabase, recordOrphanSet, type Database } from "@stratus/db";
import { expect, test } from "@playwright/test";
import { startStack, type RunningStack } from "./support/stack";

const EMAIL = "ola@example.test";
const PASSWORD = "orphans-password-42";
const VOLUME = "fenceddisk";

let stack: RunningStack;
let database: Database;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  stack = await startStack({ name: "orphans" });
  database = await openDatabase({ kind: "postgres", url: stack.env.DATABASE_URL! });
});
test.afterAll(async () => {
  await database?.close();
  await stack?.stop();
});

test("orphan sets: listed on the volume page with the export command, discarded after a confirmation", async ({ page }) => {
  await page.goto(`${stack.webUrl}/sign-up`);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Confirm password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/volumes$/);
  await page.goto(`${stack.webUrl}/volumes/new`);
  await page.getByLabel("Name", { exact: true }).fill(VOLUME);
  await page.getByLabel("Size", { exact: true }).fill("64");
  await page.getByLabel("Unit").selectOption("MiB");
  await page.getByRole("button", { name: "Create volume" }).click();
  await expect(page).toHaveURL(new RegExp(`/volumes/${VOLUME}\\?created=1$`));
  await expect(page.getByRole("region", { name: "Activity" })).toBeVisible();
  await expect(page.getByRole("region", { name: "Orphan sets" })).toHaveCount(0); // nothing to show yet

  const db = database.db;
  const user = await findUserByEmail(db, EMAIL);
  const volume = (await findVolumeByName(db, VOLUME, user!.id))!;
  const set = (await recordOrphanSet(db, {
    volumeId: volume.id,
    gatewayId: "gw-elsewhere",
    dirName: `${volume.id}-1`,
    fencingToken: 1,
    bytes: 3 * 2 ** 20,
    dirtyChunks: 3,
    reason: "another holder took its lease",
    orphanedAt: new Date(Date.now() - 5 * 60_000),
  }))!;

  // The page polls its sets every 10 s.
  const card = page.getByRole("region", { name: "Orphan sets" });
  await expect(card).toBeVisible({ timeout: 20_000 });
  const row = card.locator(`[data-orphan-set="${set.id}"]`);
  await expect(row).toContainText("3 MiB");
  await expect(row).toContainText("3 uncommitted chunks");
  await expect(row).toContainText("another holder took its lease");
  await expect(row).toContainText("gw-elsewhere");
  // This web process holds no gateway: no download, the command for the holding gateway's host instead.
  await expect(row.getByRole("link", { name: /Export orphan set/ })).toHaveCount(0);
  await expect(card.getByTestId(`orphan-export-${set.id}`)).toHaveText(`npx stratus orphans export ${set.id} --out ${VOLUME}-orphan-1.img`);
  await page.screenshot({ path: "web/test-results/orphans-volume-page.png", fullPage: true });

  await row.getByRole("button", { name: `Discard orphan set ${set.id}` }).click();
  await row.getByRole("button", { name: "Confirm discard" }).click();
  await expect(card).toContainText(`Orphan set ${set.id} discarded: gateway gw-elsewhere deletes its data.`);
  await expect(card.locator(`[data-orphan-set="${set.id}"]`)).toHaveCount(0);
  expect((await findOrphanSet(db, set.id))!.discardedAt).not.toBeNull();
  await expect(page.getByRole("region", { name: "Activity" })).toContainText("Discarded an orphan set");
});
