#!/usr/bin/env bash
# The release build, the one list of steps the Docker image's build stage and the native scale-out
# stack (scripts/scale-out.mjs, and so its CI test) both run: install the locked dependencies, build
# the `stratus` command's JavaScript, then build the dashboard for `next start`. Each step is skipped
# when its output is newer than its inputs, so a checkout that is already built starts at once.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "build-release: npm ci"
  npm ci --no-audit --no-fund
fi

# The gateway and CLI (apps/nbd-gateway/dist): the image's code belongs to root, so it cannot build at run time.
node apps/nbd-gateway/bin/build.mjs

# What ends up in the dashboard's build: the app and the workspace packages it compiles in.
build_id=apps/web/.next/BUILD_ID
sources=(apps/web/src apps/web/next.config.ts apps/web/package.json apps/web/tsconfig.json packages/control/src packages/db/src packages/storage/src)
if [ ! -f "$build_id" ] || [ -n "$(find "${sources[@]}" -newer "$build_id" -not -path '*/node_modules/*' -print -quit)" ]; then
  echo "build-release: next build (apps/web)"
  (cd apps/web && NEXT_TELEMETRY_DISABLED=1 node ../../node_modules/next/dist/bin/next build)
fi
