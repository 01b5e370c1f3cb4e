/**
 * The dashboard's browser-facing hardening, in Chromium against the production build: every page is
 * served with a nonce CSP, frame-ancestors 'none', nosniff and a referrer policy, and renders and works
 * with no CSP violation or console error; a framing attempt is refused; and sign-in links that try to
 * leave the site (`/\evil.com`, `//evil.com`, ...) land on the dashboard instead.
 */
import { expect, test, type ConsoleMessage, type Page } from "@playwright/test";
import { readStack } from "./support/state";

const EMAIL = "headers@example.test";
const PASSWORD = "security-spec-password-5";
const PAGES = ["/volumes", "/volumes/new", "/tokens", "/invitations"];
const OFF_SITE = ["/\\evil.example", "/\t/evil.example", "/\\t/evil.example", "//evil.example", "https://evil.example/", "/\\/evil.example"];

/** Console errors and CSP violations on the page, minus the missing favicon (no icon is shipped). */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (message: ConsoleMessage) => {
    if (message.type() !== "error" && message.type() !== "warning") return;
    if (/favicon\.ico/.test(message.location().url) || /status of 404/.test(message.text())) return;
    problems.push(`${message.type()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return problems;
}

/** Records every CSP violation the page reports (read back with violations()). */
async function noteViolations(page: Page): Promise<void> {
  await page.addInitScript({
    content: `window.__csp = []; document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`,
  });
}
const violations = (page: Page) => page.evaluate<string[]>("window.__csp");

test("security headers, a CSP the app runs under, no framing, and sign-in links stay on the site", async ({ page, context }) => {
  const stack = readStack();
  const problems = watch(page);
  await noteViolations(page);

  const signUp = await page.goto(`${stack.webUrl}/sign-up`);
  const headers = signUp!.headers();
  expect(headers["content-security-policy"]).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]+' 'strict-dynamic'/);
  expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
  expect(headers["content-security-policy"]).not.toContain("unsafe-eval");
  expect(headers["x-content-type-options"]).toBe("nosniff");
  expect(headers["referrer-policy"]).toBe("same-origin");
  expect(headers["x-frame-options"]).toBe("DENY");
  // A fresh nonce per response.
  const again = await page.request.get(`${stack.webUrl}/sign-in`);
  expect(again.headers()["content-security-policy"]).not.toBe(headers["content-security-policy"]);
  const api = await page.request.get(`${stack.webUrl}/api/v1/health`);
  expect(api.headers()["x-content-type-options"]).toBe("nosniff");
  expect(api.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");

  // The app runs under the policy: sign up (client-side React and tRPC), then every page.
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Confirm password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${stack.webUrl}/volumes`);
  for (const path of PAGES) {
    await page.goto(`${stack.webUrl}${path}`);
    await expect(page.locator("main")).toBeVisible();
    await page.waitForLoadState("networkidle");
  }
  expect(await violations(page)).toEqual([]);
  expect(problems).toEqual([]);

  // Another origin cannot frame the dashboard.
  const framer = await context.newPage();
  const frameProblems: string[] = [];
  framer.on("console", (message) => frameProblems.push(message.text()));
  await framer.setContent(`<iframe id="f" src="${stack.webUrl}/sign-in"></iframe>`);
  await expect.poll(() => frameProblems.some((text) => /frame-ancestors|refused to (display|frame)/i.test(text))).toBe(true);
  await framer.close();

  // Off-site callbackUrls: after signing in the browser is still on the dashboard.
  for (const attempt of OFF_SITE) {
    // Leave the dashboard first: a signed-out dashboard page would itself redirect to the sign-in page.
    await page.goto("about:blank");
    await context.clearCookies();
    await page.goto(`${stack.webUrl}/sign-in?callbackUrl=${encodeURIComponent(attempt)}`);
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((url) => url.pathname === "/volumes" || url.origin !== stack.webUrl);
    expect([attempt, new URL(page.url()).origin]).toEqual([attempt, stack.webUrl]);
  }
  expect(problems).toEqual([]);
});
