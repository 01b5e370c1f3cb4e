/**
 * Issue 23 acceptance 3 (a URL import job through the web) in a real browser against the shared stack:
 * a qcow2 made here is served by a local http server that holds the download after its first 4 MiB
 * until the page has shown the job's progress; the import then completes, the volume is attached over
 * TLS by a real client (nbdcopy reads it out) and `qemu-img compare` finds it equal to the image. The
 * presigned-looking query of the URL never reaches the page or the logs. Screenshots in
 * e2e/web/screenshots/url-import-*.png.
 */
import { createReadStream, mkdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "@playwright/test";
import { argv, tlsUri } from "@stratus/control";
import { runOk } from "../harness/exec";
import { formatBytes } from "../../apps/web/src/lib/format";
import { makeSparseImage, MiB } from "../harness/images";
import { createTestDevice } from "./support/device-credential";
import { readStack } from "./support/state";

const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), "screenshots");
const EMAIL = "import@example.test";
const PASSWORD = "import-from-a-url-7";
const VOLUME = "fromurl";
const SECRET_QUERY = "X-Amz-Signature=web-import-secret";
const HELD_AFTER = 4 * MiB;

test("import a qcow2 from a URL: progress on the volume's page, then attachable and equal", async ({ page }) => {
  const stack = readStack();
  mkdirSync(SCREENSHOTS, { recursive: true });
  const snap = (name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `url-import-${name}.png`), fullPage: true });
  const work = await mkdtemp(path.join(os.tmpdir(), "stratus-web-import-"));
  const image = await makeSparseImage(path.join(work, "disk.img"), { size: 48 * MiB, seed: 77, dataFraction: 0.6 });
  const qcow2 = path.join(work, "disk.qcow2");
  await runOk("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", image.path, qcow2]);
  const qcow2Size = (await stat(qcow2)).size;

  // Ranged reads (the request's look at the header) are served at once; a full GET sends HELD_AFTER
  // bytes and waits for release() before the rest.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const server = http.createServer((req, res) => {
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(qcow2Size - 1, Number(range[2]));
      res.writeHead(206, { "content-length": end - start + 1, "content-range": `bytes ${start}-${end}/${qcow2Size}` });
      createReadStream(qcow2, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, { "content-length": qcow2Size });
    createReadStream(qcow2, { start: 0, end: HELD_AFTER - 1 })
      .on("end", () => void released.then(() => createReadStream(qcow2, { start: HELD_AFTER }).pipe(res)))
      .pipe(res, { end: false });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/images/disk.qcow2?${SECRET_QUERY}`;

  try {
    await page.goto(`${stack.webUrl}/sign-up`);
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Confirm password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page).toHaveURL(/\/volumes$/);

    await page.getByRole("button", { name: "Import from URL" }).click();
    const form = page.getByRole("form", { name: "Import from URL" });
    await form.getByLabel("Name", { exact: true }).fill(VOLUME);
    await form.getByLabel("Image URL").fill(url);
    await snap("01-form");
    await form.getByRole("button", { name: "Import" }).click();
    await expect(page).toHaveURL(new RegExp(`/volumes/${VOLUME}$`));

    // The job holds at 4 MiB downloaded: the page shows it live, with the source but not its query.
    const card = page.getByRole("region", { name: "Import" });
    await expect(page.getByRole("heading", { name: VOLUME })).toContainText("Importing");
    await expect(card.getByTestId("import-figures")).toContainText(`${formatBytes(HELD_AFTER)} of ${formatBytes(qcow2Size)}`);
    await expect(card).toContainText("Downloading http://127.0.0.1:");
    await expect(card).toContainText("/images/disk.qcow2?…");
    await expect(card.getByRole("progressbar", { name: "Import progress" })).toHaveAttribute(
      "aria-valuenow",
      String(Math.floor((100 * HELD_AFTER) / qcow2Size)),
    );
    expect(await page.content()).not.toContain("web-import-secret");
    await snap("02-progress");

    release();
    // Done: the normal page, with the attach commands, once the data is committed.
    await expect(page.getByRole("region", { name: "Attach from a device" })).toBeVisible({ timeout: 60_000 });
    await expect(page.getByRole("heading", { name: VOLUME })).not.toContainText("Importing");
    await expect(page.getByRole("region", { name: "Activity" })).toContainText(/Started importing http:\/\/127\.0\.0\.1:\d+\/images\/disk\.qcow2\?… \(qcow2\)/);
    await snap("03-imported");

    // Attachable: a real client over TLS reads the volume out; it equals the image.
    const device = await createTestDevice(stack, EMAIL, "import e2e laptop");
    const [uri] = argv([tlsUri({ host: "127.0.0.1", port: stack.nbdPort }, VOLUME, device, "psk")], os.homedir());
    const copy = path.join(work, "copy.raw");
    await runOk("nbdcopy", [uri!, copy], { timeoutMs: 60_000 });
    await runOk("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", copy, qcow2]);
    for (const log of [stack.logFiles.gateway, stack.logFiles.web]) expect(readFileSync(log, "utf8")).not.toContain("web-import-secret");
  } finally {
    release();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(work, { recursive: true, force: true });
  }
});
