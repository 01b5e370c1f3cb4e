/**
 * Playwright for the dashboard (issue 4 acceptance 1): Debian's Chromium, one worker, no retries.
 * The global setup starts the scaled-out stack on free ports — PostgreSQL (a fresh database), Redis,
 * the S3 test server, `stratus gateway --no-web` and `next start` (production build) — and tears it
 * down. Tests wait for conditions, never for fixed times.
 */
import { defineConfig } from "@playwright/test";

export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export default defineConfig({
  testDir: "web",
  testMatch: "**/*.spec.ts",
  globalSetup: "./web/support/global-setup.ts",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: true,
  // The whole flow (sign up to delete, real NBD clients included) in one test.
  timeout: 150_000,
  expect: { timeout: 20_000 },
  outputDir: "web/test-results",
  reporter: [["list"], ["json", { outputFile: process.env.PLAYWRIGHT_JSON_OUTPUT_FILE ?? "web/test-results/report.json" }]],
  use: {
    browserName: "chromium",
    headless: true,
    launchOptions: { executablePath: process.env.STRATUS_CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS },
    viewport: { width: 1280, height: 900 },
    actionTimeout: 15_000,
    navigationTimeout: 30_000,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
});
