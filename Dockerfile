# The Stratus gateway image (NBD server + control API + placeholder page, one process).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY packages/storage/package.json packages/storage/
COPY packages/db/package.json packages/db/
COPY apps/nbd-gateway/package.json apps/nbd-gateway/
COPY apps/web/package.json apps/web/
COPY e2e/package.json e2e/
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENV STRATUS_DATA_DIR=/data
# The gateway's malloc settings: see apps/nbd-gateway/bin/gateway-env.mjs (the same value).
ENV GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=4194304:glibc.malloc.top_pad=16777216
VOLUME ["/data"]
CMD ["node", "apps/nbd-gateway/bin/stratus.mjs", "gateway"]
