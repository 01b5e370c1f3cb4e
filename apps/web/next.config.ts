import type { NextConfig } from "next";

const config: NextConfig = {
  // Workspace packages ship TypeScript source; Next compiles them with the app.
  transpilePackages: ["@stratus/control", "@stratus/db", "@stratus/storage"],
  // Native or Node-only modules stay outside the bundle and load from node_modules at run time.
  serverExternalPackages: ["@electric-sql/pglite", "pg", "zstd-napi", "bullmq", "ioredis", "@aws-sdk/client-s3"],
  poweredByHeader: false,
  reactStrictMode: true,
};

export default config;
