/**
 * Issue 23 (items 1, 2 and 5) in a real browser against the shared stack: data written over TLS by a
 * real client (nbdcopy), a snapshot taken from the volume's page, the parent overwritten afterwards;
 * the snapshot export VOL@NAME read by nbdcopy equals the data at snapshot time and refuses writes
 * (nbdcopy fails, nbdsh gets EPERM from the client library and, with strict mode off, from the gateway);
 * the snapshot cloned from its row, the clone's page names its origin, a client attaches the clone and
 * reads the same data; a second snapshot is deleted; the parent is locked and unlocked; the account
 * activity lists each of these. Screenshots in e2e/web/screenshots/snapshots-*.png.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test, type Page } from "@playwright/test";
import { argv, tlsUri } from "@stratus/control";
import { run, runOk } from "../harness/exec";
import { createTestDevice } from "./support/device-credential";
import { startNbdcopy } from "./support/nbdcopy";
import { seededBytes } from "./support/seeded-data";
import { readStack } from "./support/state";

const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), "screenshots");
const EMAIL = "snap@example.test";
const PASSWORD = "snapshots-and-clones-42";
const PASSPHRASE = "the passphrase of the parent disk";
const CLONE_PASSPHRASE = "the passphrase of the clone disk";
const VOLUME = "snapdisk";
const SNAPSHOT = "before";
const CLONE = "snapclone";
const DEVICE = "snapshot e2e laptop";
const MiB = 2 ** 20;
const SIZE = 16 * MiB;
/** What the snapshot pins, and what the parent gets after it (over the same first bytes). */
const AT_SNAPSHOT = seededBytes("snapshot e2e: before", 3 * MiB);
const AFTER = seededBytes("snapshot e2e: after", MiB);

test("snapshot, read-only export, clone, lock and unlock; the account activity lists them", async ({ page }) => {
  test.setTimeout(240_000);
  const stack = readStack();
  mkdirSync(SCREENSHOTS, { recursive: true });
  const work = mkdtempSync(path.join(os.tmpdir(), "stratus-web-snapshots-"));
  const snap = (name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `snapshots-${name}.png`), fullPage: true });
  try {
    await signUpAndCreate(page, stack.webUrl);
    const device = await createTestDevice(stack, EMAIL, DEVICE);
    // The device was made through the API, not this page: come back to the page, as a user would, so
    // its read-only command is the device's (the page does not poll the device list).
    await page.reload();
    const uri = (exportName: string) => argv([tlsUri({ host: "127.0.0.1", port: stack.nbdPort }, exportName, device, "psk")], os.homedir())[0]!;
    const readAll = async (exportName: string) => {
      const file = path.join(work, `${exportName}.img`);
      await runOk("nbdcopy", [uri(exportName), file], { timeoutMs: 60_000 });
      return readFileSync(file);
    };
    const expected = (head: Buffer) => Buffer.concat([head, Buffer.alloc(SIZE - head.length)]);

    await writeAtStart(uri(VOLUME), AT_SNAPSHOT);
    const card = page.getByRole("region", { name: "Snapshots" });
    await expect(card).toContainText("No snapshots yet.");
    await card.getByLabel("Snapshot name").fill(SNAPSHOT);
    await card.getByRole("button", { name: "Take snapshot" }).click();
    await expect(card).toContainText(new RegExp(`Took snapshot ${SNAPSHOT} at epoch \\d+: export ${VOLUME}@${SNAPSHOT}, read-only\\.`));
    const row = card.locator(`tr[data-snapshot="${SNAPSHOT}"]`);
    await expect(row.getByTestId("snapshot-export")).toHaveText(`${VOLUME}@${SNAPSHOT}`);
    await expect(row).toContainText("16 MiB");
    // The read-only command is the device's own copy command aimed at VOL@NAME (%40 in the URI).
    await expect(card.getByTestId(`snapshot-command-${VOLUME}@${SNAPSHOT}`)).toContainText(`/${VOLUME}%40${SNAPSHOT}?tls-psk-file=`);
    await snap("01-taken");
    await card.screenshot({ path: path.join(SCREENSHOTS, "snapshots-01-card.png") });

    // The parent moves on; the snapshot does not.
    await writeAtStart(uri(VOLUME), AFTER);
    const parentNow = await readAll(VOLUME);
    expect(parentNow.subarray(0, MiB).equals(AFTER)).toBe(true);
    expect((await readAll(`${VOLUME}@${SNAPSHOT}`)).equals(expected(AT_SNAPSHOT))).toBe(true);
    // What only the snapshot holds now: the chunk the parent rewrote (shown after the list's next poll).
    await expect.poll(async () => (await page.reload(), await row.getByTestId("snapshot-exclusive").innerText()), { timeout: 30_000 }).not.toBe("0 B");

    await test.step("the snapshot export refuses writes", async () => {
      const image = path.join(work, "write-attempt.img");
      writeFileSync(image, Buffer.alloc(MiB, 7));
      const copied = await run("nbdcopy", [image, uri(`${VOLUME}@${SNAPSHOT}`)], { timeoutMs: 60_000 });
      expect(copied.code).not.toBe(0);
      expect(copied.stderr).toMatch(/read-only|EPERM|not permitted/i);
      // nbdsh runs `python3 -m nbd`: Debian's python3, which has the bindings, not another one first on PATH.
      const env = { ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ""}` };
      const attempt = await runOk("nbdsh", ["-c", nbdshWriteAttempt(uri(`${VOLUME}@${SNAPSHOT}`))], { timeoutMs: 60_000, env });
      expect(attempt.trim().split("\n")).toEqual(["read-only: True", "client: EPERM", "gateway: EPERM"]);
      expect((await readAll(`${VOLUME}@${SNAPSHOT}`)).equals(expected(AT_SNAPSHOT))).toBe(true);
    });

    await test.step("clone the snapshot from its row; the clone attaches with the data at snapshot time", async () => {
      await row.getByRole("button", { name: `Clone ${SNAPSHOT}` }).click();
      const form = card.getByRole("form", { name: `Clone ${VOLUME}@${SNAPSHOT}` });
      await form.getByLabel("New volume name").fill(CLONE);
      // The parent has no auto-unlock: neither has the clone, which needs its own passphrase.
      await form.getByLabel("Passphrase of the clone").fill(CLONE_PASSPHRASE);
      await form.getByLabel("Confirm the clone's passphrase").fill(CLONE_PASSPHRASE);
      await snap("02-clone-form");
      await form.getByRole("button", { name: "Create clone" }).click();
      await expect(page).toHaveURL(new RegExp(`/volumes/${CLONE}\\?created=1$`));
      await expect(page.getByTestId("cloned-from")).toHaveText(`Cloned from ${VOLUME}@${SNAPSHOT}`);
      await expect(page.getByTestId("cloned-from").getByRole("link", { name: `${VOLUME}@${SNAPSHOT}` })).toBeVisible();

      expect((await runOk("nbdinfo", ["--size", uri(CLONE)], { timeoutMs: 30_000 })).trim()).toBe(String(SIZE));
      expect((await readAll(CLONE)).equals(expected(AT_SNAPSHOT))).toBe(true);
      await expect(page.getByRole("region", { name: "Activity" })).toContainText(`Attached by ${DEVICE}`);
      await expect(page.getByRole("region", { name: "Activity" })).toContainText(`Cloned from ${VOLUME}@${SNAPSHOT}`);
      await snap("03-clone-page");
      // The parent is untouched by the clone.
      expect((await readAll(VOLUME)).equals(parentNow)).toBe(true);
      await page.getByTestId("cloned-from").getByRole("link").click();
      await expect(page).toHaveURL(new RegExp(`/volumes/${VOLUME}$`));
    });

    await test.step("a second snapshot, deleted after a confirmation", async () => {
      await card.getByLabel("Snapshot name").fill("scratch");
      await card.getByRole("button", { name: "Take snapshot" }).click();
      const scratch = card.locator('tr[data-snapshot="scratch"]');
      await expect(scratch).toBeVisible();
      await scratch.getByRole("button", { name: "Delete snapshot scratch" }).click();
      await scratch.getByRole("button", { name: "Confirm delete" }).click();
      await expect(card).toContainText(`Deleted snapshot ${VOLUME}@scratch; the`);
      await expect(scratch).toHaveCount(0);
      await expect(card.locator("tr[data-snapshot]")).toHaveCount(1);
    });

    await test.step("lock and unlock the parent", async () => {
      const lock = page.getByRole("region", { name: /^(Unlocked|Locked)$/ });
      await lock.getByRole("button", { name: "Lock", exact: true }).click();
      await lock.getByRole("button", { name: "Confirm lock" }).click();
      // The server's answer, not just the heading (which the page's refresh may turn first).
      await expect(lock).toContainText(`Locked volume ${VOLUME}: its gateway commits and closes it and drops its cached data`);
      await expect(lock.getByRole("heading", { name: "Locked" })).toBeVisible();
      // Locked: the gateway has no key for the volume, nor for its snapshot.
      expect((await run("nbdinfo", ["--size", uri(`${VOLUME}@${SNAPSHOT}`)], { timeoutMs: 30_000 })).code).not.toBe(0);
      await lock.getByLabel("Passphrase").fill(PASSPHRASE);
      await lock.getByRole("button", { name: "Unlock" }).click();
      await expect(lock.getByRole("heading", { name: "Unlocked" })).toBeVisible();
      expect((await readAll(`${VOLUME}@${SNAPSHOT}`)).equals(expected(AT_SNAPSHOT))).toBe(true);
      await snap("04-parent");
    });

    await page.getByRole("link", { name: "Activity", exact: true }).click();
    await expect(page).toHaveURL(/\/activity$/);
    const list = page.getByRole("list", { name: "Account activity, newest first" });
    await expect(list.locator('li[data-action="volume.unlock"]')).toHaveCount(1);
    const actions = ["snapshot.create", "snapshot.delete", "volume.clone", "volume.lock", "volume.unlock"];
    const lines = await list.locator(actions.map((action) => `li[data-action="${action}"]`).join(", ")).allInnerTexts();
    expect(
      lines.map((line) =>
        line
          .split("\n")[0]!
          .trim()
          .replace(/\(epoch \d+\)/, "(epoch N)"),
      ),
    ).toEqual([
      `${VOLUME}: Unlocked · via dashboard`,
      `${VOLUME}: Locked · via dashboard`,
      `${VOLUME}: Deleted snapshot scratch · via dashboard`,
      `${VOLUME}: Took snapshot scratch (epoch N) · via dashboard`,
      `${CLONE}: Cloned from ${VOLUME}@${SNAPSHOT} · via dashboard`,
      `${VOLUME}: Took snapshot ${SNAPSHOT} (epoch N) · via dashboard`,
    ]);
    await snap("05-account-activity");
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

async function signUpAndCreate(page: Page, webUrl: string): Promise<void> {
  await page.goto(`${webUrl}/sign-up`);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Confirm password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/volumes$/);
  await page.goto(`${webUrl}/volumes/new`);
  await page.getByLabel("Name", { exact: true }).fill(VOLUME);
  await page.getByLabel("Size", { exact: true }).fill(String(SIZE / MiB));
  await page.getByLabel("Unit").selectOption("MiB");
  await page.getByLabel("Passphrase", { exact: true }).fill(PASSPHRASE);
  await page.getByLabel("Confirm passphrase").fill(PASSPHRASE);
  await page.getByLabel("Unlock automatically after a restart").uncheck();
  await page.getByRole("button", { name: "Create volume" }).click();
  await expect(page).toHaveURL(new RegExp(`/volumes/${VOLUME}\\?created=1$`));
}

/** Writes `data` at offset 0 through a real client and flushes before it exits. */
async function writeAtStart(uri: string, data: Buffer): Promise<void> {
  const copy = startNbdcopy(uri);
  try {
    await copy.write(data);
    expect(await copy.finish()).toBe(0);
  } finally {
    copy.kill();
  }
}

/**
 * nbdsh (libnbd's Python shell): the export says it is read-only, a write is refused by libnbd itself,
 * and with strict mode off (the request sent anyway) by the gateway, both with EPERM.
 */
function nbdshWriteAttempt(uri: string): string {
  return [
    "import errno",
    "h.set_uri_allow_local_file(True)",
    `h.connect_uri(${JSON.stringify(uri)})`,
    'print("read-only:", h.is_read_only() == 1)',
    'for who in ("client", "gateway"):',
    '    if who == "gateway": h.set_strict_mode(0)',
    "    try:",
    '        h.pwrite(b"x" * 4096, 0)',
    '        print(who + ": written")',
    "    except nbd.Error as e:",
    '        print(who + ": " + errno.errorcode.get(e.errno, str(e.errno)))',
  ].join("\n");
}
