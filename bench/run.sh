#!/usr/bin/env bash
# `npm run bench`: the gateway against nbdkit's file plugin and qemu-nbd, side by side in one run
# (see bench/README.md and ../shared/BENCHMARKS.md). Configuration comes from BENCH_* variables.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in fio nbdkit qemu-nbd nbdcopy; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: missing ${missing[*]} (Debian: apt-get install fio nbdkit qemu-utils libnbd-bin)" >&2
  exit 1
fi

exec npx tsx bench/run.ts "$@"
