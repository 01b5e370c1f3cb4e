#!/usr/bin/env bash
# `npm run bench`: the gateway against nbdkit's file plugin and qemu-nbd, side by side in one run
# (see bench/README.md). Configuration comes from BENCH_* variables.
set -euo pipefail
cd "$(dirname "$0")/.."

# The cloud and wan sections' peer: s3backer (FUSE) from Debian, installed here when missing.
if [[ "${BENCH_SECTIONS:-local,writes,tls,cloud,wan,startup}" =~ cloud|wan ]] && ! command -v s3backer >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "bench: installing s3backer (Debian package) for the cloud section" >&2
  $sudo_cmd apt-get install -y s3backer >&2 || { echo "bench: cannot install s3backer; run with BENCH_SECTIONS=local" >&2; exit 1; }
fi

# The TLS section's client is bench/nbd-load.c, built against libnbd at run time.
if [[ "${BENCH_SECTIONS:-local,writes,tls,cloud,wan,startup}" == *tls* ]] && { ! command -v cc >/dev/null 2>&1 || [ ! -f /usr/include/libnbd.h ]; }; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "bench: installing gcc and libnbd-dev (Debian packages) for the TLS section's client" >&2
  $sudo_cmd apt-get install -y gcc libnbd-dev >&2 || { echo "bench: cannot install gcc/libnbd-dev; run with BENCH_SECTIONS=local,cloud" >&2; exit 1; }
fi

# The startup section times the CLI with hyperfine (Debian package).
if [[ "${BENCH_SECTIONS:-local,writes,tls,cloud,wan,startup}" == *startup* ]] && ! command -v hyperfine >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "bench: installing hyperfine (Debian package) for the startup section" >&2
  $sudo_cmd apt-get install -y hyperfine >&2 || { echo "bench: cannot install hyperfine; run without the startup section" >&2; exit 1; }
fi

missing=()
for tool in fio nbdkit qemu-nbd nbdcopy; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: missing ${missing[*]} (Debian: apt-get install fio nbdkit qemu-utils libnbd-bin)" >&2
  exit 1
fi

# The gateways the bench starts serve the API its CLI calls (volume create): that needs the
# dashboard's production build, as `npm start` does.
if [ ! -f apps/web/.next/BUILD_ID ]; then
  echo "bench: building the dashboard (next build) for the gateways' API" >&2
  npm run build >&2
fi

exec npx tsx bench/run.ts "$@"
