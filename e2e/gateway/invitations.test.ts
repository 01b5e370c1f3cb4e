/**
 * Sign-up by invitation in a real browser, on the embedded default with a public (non-loopback) URL: the
 * setup token from the log makes the first admin through its link (the form reads the token from the
 * URL fragment, then clears it); the admin creates an invitation link on the Invitations page; a
 * second person joins with it; a walk-in without one is refused, and a used link does not work again.
 */
import { chromium, type Browser, type Page } from "@playwright/test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type Gateway } from "../harness";

/** vitest's expect.poll waits 1 s by default; a page under load may take longer to answer. */
const POLL = { timeout: 20_000 };
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

describe("sign-up by invitation in the browser", () => {
  let gateway: Gateway;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    gateway = await startGateway({ env: { STRATUS_PUBLIC_URL: "https://stratus.example.com", STRATUS_KDF_N: "1024" } });
    base = `http://127.0.0.1:${gateway.webPort}`;
    browser = await chromium.launch({ executablePath: process.env.STRATUS_CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.dispose();
  });

  async function signUp(page: Page, url: string, email: string): Promise<void> {
    await page.goto(url);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill("invited-password-123");
    await page.getByLabel("Confirm password").fill("invited-password-123");
    await page.getByRole("button", { name: "Create account" }).click();
  }

  it("setup token, then an admin's single-use link; no walk-ins", async () => {
    // Logged when the dashboard starts, which may be just after "stratus ready".
    const announcement = () => gateway.logs().find((line) => String(line.msg ?? "").includes("the first admin signs up at"));
    await expect.poll(announcement, { timeout: 30_000 }).toBeDefined();
    const announced = announcement();
    const setupPath = /\/sign-up#invitation=stratus_inv_[A-Za-z0-9_-]{32}/.exec(String(announced?.msg))![0];
    expect(String(announced!.msg)).toContain(`https://stratus.example.com${setupPath}`);

    const admin = await (await browser.newContext()).newPage();
    await signUp(admin, `${base}${setupPath}`, "admin@example.test");
    await admin.waitForURL(`${base}/volumes`);
    await admin.getByRole("link", { name: "Invitations" }).first().click();
    await admin.getByRole("button", { name: "Create invitation link" }).click();
    const link = await admin.getByTestId("invitation-link").innerText();
    expect(link).toMatch(new RegExp(`^${base}/sign-up#invitation=stratus_inv_[A-Za-z0-9_-]{32}$`));

    const walkIn = await (await browser.newContext()).newPage();
    await signUp(walkIn, `${base}/sign-up`, "walk-in@example.test");
    await expect.poll(() => walkIn.getByText("Paste the invitation (or setup token) you were given.").isVisible(), POLL).toBe(true);

    const invitee = await (await browser.newContext()).newPage();
    await signUp(invitee, link, "invitee@example.test");
    await invitee.waitForURL(`${base}/volumes`);
    // The invitee is no admin: no Invitations link.
    await expect.poll(() => invitee.getByRole("link", { name: "Volumes" }).first().isVisible(), POLL).toBe(true);
    expect(await invitee.getByRole("link", { name: "Invitations" }).count()).toBe(0);

    const again = await (await browser.newContext()).newPage();
    await signUp(again, link, "again@example.test");
    await expect.poll(() => again.getByText("this invitation is unknown, already used or expired").isVisible(), POLL).toBe(true);
    await admin.reload();
    await expect.poll(() => admin.getByText("Used", { exact: true }).isVisible(), POLL).toBe(true);
    // The tokens never reached a log line but the setup announcement.
    const token = link.split("invitation=")[1]!;
    expect(gateway.logs().filter((line) => JSON.stringify(line).includes(token))).toEqual([]);
  });
});
