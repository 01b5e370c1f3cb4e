import type { NextConfig } from "next";

const config: NextConfig = {
  // Workspace packages ship TypeScript source; Next compiles them with the app.
  transpilePackages: ["@stratus/control", "@stratus/db", "@stratus/storage"],
  // Native or Node-only modules stay outside the bundle and load from node_modules at run time.
  serverExternalPackages: ["@electric-sql/pglite", "pg", "zstd-napi", "bullmq", "ioredis", "@aws-sdk/client-s3", "prom-client"],
  poweredByHeader: false,
  // Every response, static files included. The Content-Security-Policy (a nonce per request) comes from
  // src/proxy.ts. (Written out here: the embedded gateway loads this file where it cannot import src/.)
  headers: async () => [
    {
      source: "/:path*",
      headers: [
        { key: "X-Content-Type-Options", value: "nosniff" },
        { key: "Referrer-Policy", value: "same-origin" },
        // For browsers that predate CSP's frame-ancestors.
        { key: "X-Frame-Options", value: "DENY" },
      ],
    },
  ],
  reactStrictMode: true,
};

export default config;
