# syntax=docker/dockerfile:1
# The Stratus image: one image for both processes of a scaled-out deployment (docker-compose.yml):
# `stratus gateway --no-web` (the default command) and the dashboard, `next start` in apps/web.

# --- build: every dependency, then the release build (the same script the native stack test runs) ---
FROM node:20.19.5-bookworm-slim AS build
# zstd-napi compiles with node-gyp when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN bash scripts/build-release.sh \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf apps/web/.next/cache

# --- runtime: production dependencies, the gateway's built JavaScript, the dashboard's build; not root ---
FROM node:20.19.5-bookworm-slim
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    STRATUS_DATA_DIR=/data
# The gateway's malloc and V8 settings: see apps/nbd-gateway/bin/gateway-env.mjs (the same values).
ENV GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=4194304:glibc.malloc.top_pad=16777216:glibc.malloc.arena_max=1
ENV NODE_OPTIONS=--max-semi-space-size=4
WORKDIR /app
COPY --from=build /app /app
# The code stays root's; the data directory and Next.js's cache belong to the user the processes run as.
RUN mkdir -p /data apps/web/.next/cache \
 && chown node:node /data apps/web/.next/cache \
 && chmod 0700 /data
USER node
VOLUME ["/data"]
EXPOSE 10809 3000
CMD ["node", "apps/nbd-gateway/bin/stratus.mjs", "gateway", "--no-web"]
