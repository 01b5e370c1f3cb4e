import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// One runner for every suite. Projects split by part so a failure names the layer it came from;
// the real-client suite (e2e/gateway) runs its files one at a time because each starts gateways,
// NBD clients and an S3 server, and the machine has two cores.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "storage",
          root: "packages/storage",
          include: ["src/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "db",
          root: "packages/db",
          include: ["src/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "control",
          root: "packages/control",
          include: ["src/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The web app's server side (routers, REST handlers, auth) driven without a browser.
        resolve: { alias: { "@": fileURLToPath(new URL("./apps/web/src", import.meta.url)) } },
        // Pages are .tsx with "jsx": "preserve" for Next; tests that import one need it compiled.
        oxc: { jsx: { runtime: "automatic" } },
        test: {
          name: "web",
          root: "apps/web",
          include: ["src/**/*.test.ts"],
          // next-auth imports "next/server" without an extension; let vite resolve it.
          server: { deps: { inline: ["next-auth"] } },
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "gateway",
          root: "apps/nbd-gateway",
          include: ["src/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "e2e",
          root: "e2e",
          include: ["gateway/**/*.test.ts"],
          testTimeout: 300_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
