#!/usr/bin/env bash
# Runs every go test -fuzz target in the module for a bounded time each.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-5}"
status=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target (${secs}s)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "${secs}s" "$pkg" >/tmp/govirtd-fuzz.$$ 2>&1; then
      cat /tmp/govirtd-fuzz.$$
      echo "fuzz: $target FAILED (the failing input is saved under $pkg's testdata/fuzz)" >&2
      status=1
    fi
  done
done
rm -f /tmp/govirtd-fuzz.$$
exit $status
