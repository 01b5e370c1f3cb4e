/**
 * Issue 22 in a real browser: a volume held by a device (its lease row seeded in the database, as a
 * gateway elsewhere would hold it) is detached from its page. Nobody answers the handoff request, so
 * "Detach" reports, after STRATUS_HANDOFF_TIMEOUT (2 s here), that the holder did not let go; "Force
 * detach" asks for confirmation, explaining the orphan set, then takes the lease away and raises the
 * fencing token. The cooperative path with a real gateway holder is the gateway's tests' business.
 */
import { acquireLease, findLiveLease, findUserByEmail, findVolumeById, findVolumeByName, openDatabase, type Database } from "@stratus/db";
import { expect, test } from "@playwright/test";
import { startStack, type RunningStack } from "./support/stack";

const EMAIL = "lin@example.test";
const PASSWORD = "detach-password-42";
const VOLUME = "helddisk";
const HOLDER = { gatewayId: "gw-elsewhere", gatewayRun: "run-1", deviceCredentialId: null, holderName: "old laptop", clientAddress: "10.9.8.7" };

let stack: RunningStack;
let database: Database;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  stack = await startStack({ name: "detach", env: { STRATUS_HANDOFF_TIMEOUT: "2s" } });
  database = await openDatabase({ kind: "postgres", url: stack.env.DATABASE_URL! });
});
test.afterAll(async () => {
  await database?.close();
  await stack?.stop();
});

test("detach: a silent holder is reported, force detach confirms and fences it", async ({ page }) => {
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

  const db = database.db;
  const user = await findUserByEmail(db, EMAIL);
  const volume = (await findVolumeByName(db, VOLUME, user!.id))!;
  const taken = await acquireLease(db, { volumeId: volume.id, holder: HOLDER, ttlMs: 10 * 60_000, now: new Date() });
  expect(taken.kind).toBe("acquired");

  const card = page.getByTestId("detach-volume");
  await expect(card).toContainText("old laptop (10.9.8.7)");
  await card.getByRole("button", { name: "Detach", exact: true }).click();
  await expect(card.getByRole("alert")).toContainText(`did not let go of volume ${VOLUME} within 2s: force detach fences it without its cooperation`);
  expect((await findLiveLease(db, volume.id, new Date()))?.fencingToken).toBe(taken.lease.fencingToken);

  await card.getByRole("button", { name: "Force detach" }).click();
  await expect(card).toContainText("kept aside as an orphan set");
  await card.getByRole("button", { name: "Confirm force detach" }).click();
  await expect(card).toContainText(`Force detached volume ${VOLUME} from old laptop (10.9.8.7)`);
  await expect(card).toContainText("No device holds this volume.");
  await expect(page.getByTestId("detail-lease")).toHaveText("Nobody");
  await expect(page.getByRole("region", { name: "Activity" })).toContainText("Force detached old laptop (10.9.8.7)");
  expect(await findLiveLease(db, volume.id, new Date())).toBeUndefined();
  expect((await findVolumeById(db, volume.id))!.fencingToken).toBe(taken.lease.fencingToken + 1);
});
