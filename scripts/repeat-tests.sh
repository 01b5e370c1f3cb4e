#!/usr/bin/env bash
# Runs vitest projects again and again to catch flaky tests: `bash scripts/repeat-tests.sh [RUNS]
# [PROJECT...]` (default 20 runs of storage and gateway). Stops at the first failing run and keeps
# its log; prints one line per run and the count at the end.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-20}
shift || true
projects=("$@")
[ ${#projects[@]} -gt 0 ] || projects=(storage gateway)
args=()
for project in "${projects[@]}"; do args+=(--project "$project"); done

logs=$(mktemp -d -t stratus-repeat-XXXXXX)
passed=0
for run in $(seq 1 "$runs"); do
  started=$(date +%s)
  if NO_COLOR=1 FORCE_COLOR=0 npx vitest run "${args[@]}" >"$logs/run-$run.log" 2>&1; then
    passed=$((passed + 1))
    echo "run $run/$runs: passed in $(($(date +%s) - started)) s ($(grep -E '^ +Tests ' "$logs/run-$run.log" | tr -s ' '))"
    rm "$logs/run-$run.log"
  else
    echo "run $run/$runs: FAILED in $(($(date +%s) - started)) s; log: $logs/run-$run.log"
    grep -E 'FAIL|✗|×' "$logs/run-$run.log" | head -20
    echo "repeat: $passed of $runs runs passed before the first failure (${projects[*]})"
    exit 1
  fi
done
rmdir "$logs"
echo "repeat: $passed of $runs runs passed in a row (${projects[*]})"
