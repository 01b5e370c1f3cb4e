#!/usr/bin/env bash
# Runs every test Stratus has, on a fresh Debian machine or a used one: installs what is missing
# (Debian packages for the real NBD clients, npm dependencies), starts PostgreSQL and Redis if they
# do not answer, then typechecks, lints, runs all vitest projects and the Playwright dashboard test.
# Ends with the summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages: the NBD clients and tools the real-client tests drive --------------------
need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-img     || need_pkgs+=(qemu-utils)
have nbdinfo      || need_pkgs+=(libnbd-bin)
have nbdkit       || need_pkgs+=(nbdkit)
have fio          || need_pkgs+=(fio)
have fusermount3  || need_pkgs+=(fuse3)
have mkfs.ext4    || need_pkgs+=(e2fsprogs)
# NTFS images for import --used-only (ntfsclone, mkntfs, ntfscp, ntfscat, ntfsfix).
have ntfsclone    || need_pkgs+=(ntfs-3g)
# fincore: the disk-cache tests check which file pages the kernel caches (O_DIRECT writes leave none).
have fincore      || need_pkgs+=(util-linux-extra)
have redis-server || need_pkgs+=(redis-server)
have pg_ctlcluster || need_pkgs+=(postgresql)
# TLS attach commands: a throwaway CA (openssl) and nbd-client's own --help to check its flags.
have openssl      || need_pkgs+=(openssl)
have nbd-client   || need_pkgs+=(nbd-client)
python3 -c 'import nbd' 2>/dev/null || need_pkgs+=(python3-libnbd)
# The Playwright dashboard test drives Debian's Chromium (/usr/bin/chromium; no browser download here).
[ -x "${STRATUS_CHROMIUM:-/usr/bin/chromium}" ] || need_pkgs+=(chromium)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}"
fi

# --- npm dependencies ---------------------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund
fi

# --- PostgreSQL and Redis -----------------------------------------------------------------------
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }
if ! pg_up; then
  log "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  # Tests connect as postgres over TCP without a password, as on the CI machines.
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi

# --- checks and tests ---------------------------------------------------------------------------
log "typecheck"
npm run typecheck
log "lint"
npm run lint

# The web tests, the remote CLI test and every e2e test that starts a gateway serve the production
# build of the dashboard: build it once here (about 20-30 s).
log "building the dashboard (next build)"
(cd apps/web && NEXT_TELEMETRY_DISABLED=1 node ../../node_modules/next/dist/bin/next build)

# Every test that runs `stratus` runs the built JavaScript (bin/stratus.mjs would build it when stale,
# but many tests at once would each build it): build it once here.
log "building the stratus command (apps/nbd-gateway/bin/build.mjs)"
node apps/nbd-gateway/bin/build.mjs

log "tests"
report=$(mktemp -t stratus-vitest-XXXXXX.json)
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?

# The dashboard in a real browser (e2e/playwright.config.ts: builds apps/web if stale, starts the stack).
log "playwright"
pw_report=$(mktemp -t stratus-playwright-XXXXXX.json)
(cd e2e && PLAYWRIGHT_JSON_OUTPUT_FILE="$pw_report" npx playwright test) || status=$?

node scripts/test-summary.mjs "$report" "$pw_report" || status=1
rm -f "$report" "$pw_report"
exit "$status"
