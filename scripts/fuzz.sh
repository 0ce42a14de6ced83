#!/usr/bin/env bash
# Runs every go test -fuzz target in the module, each bounded.
# Usage: scripts/fuzz.sh [FUZZTIME]   (go test -fuzztime: "60s" or "200000x";
# default 100000x). A count of inputs rather than a duration is the CI
# default: Go's fuzzer can report a spurious "context deadline exceeded"
# failure when a duration runs out mid-run, and a count has no deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-100000x}"
status=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target ($fuzztime)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/govirtd-fuzz.$$ 2>&1; then
      cat /tmp/govirtd-fuzz.$$
      echo "fuzz: $target FAILED (the failing input is saved under $pkg's testdata/fuzz)" >&2
      status=1
    fi
  done
done
rm -f /tmp/govirtd-fuzz.$$
exit $status
