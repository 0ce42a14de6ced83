#!/usr/bin/env bash
# Runs every go test -fuzz target in the module, each bounded.
# Usage: scripts/fuzz.sh [FUZZTIME]   (go test -fuzztime: "60s" or "200000x";
# default 100000x). A count of inputs rather than a duration is the CI
# default: Go's fuzzer can report a spurious "context deadline exceeded"
# failure when a duration runs out mid-run, and a count has no deadline.
#
# Go's fuzzer has one more false alarm: when the run ends while a worker is
# minimizing a new *interesting* (not failing) input, it reports "fuzzing
# process hung or terminated unexpectedly while minimizing: EOF" and saves
# that input as if it failed. A real failure reproduces from its saved
# input, so such a report is checked by re-running the saved input: if it
# passes, the input is removed and the target fuzzed once more; anything
# that reproduces, or fails twice, fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-100000x}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0

# fuzz_once PKG TARGET: 0 = passed, 1 = failed, 2 = spurious (not reproduced)
fuzz_once() {
  local pkg=$1 target=$2
  if go test -run '^$' -fuzz "^${2}\$" -fuzztime "$fuzztime" -fuzzminimizetime 100x "$pkg" >"$out" 2>&1; then
    return 0
  fi
  cat "$out"
  local saved
  saved=$(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p' "$out" | head -1)
  if [ -n "$saved" ] && grep -q 'fuzzing process hung or terminated unexpectedly' "$out"; then
    local dir id
    dir=$(go list -f '{{.Dir}}' "$pkg")
    id=$(basename "$saved")
    if go test -run "^${target}\$/^${id}\$" "$pkg" >/dev/null 2>&1; then
      echo "fuzz: $target: the saved input $id passes when re-run: the fuzzer's false alarm, not a failure; removing it and fuzzing again" >&2
      rm -f "$dir/$saved"
      rmdir "$dir/testdata/fuzz/$target" "$dir/testdata/fuzz" "$dir/testdata" 2>/dev/null || true
      return 2
    fi
  fi
  return 1
}

for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target ($fuzztime)"
    rc=0
    fuzz_once "$pkg" "$target" || rc=$?
    if [ "$rc" = 2 ]; then
      rc=0
      fuzz_once "$pkg" "$target" || rc=$?
    fi
    if [ "$rc" != 0 ]; then
      echo "fuzz: $target FAILED (the failing input is saved under $pkg's testdata/fuzz)" >&2
      status=1
    fi
  done
done
exit $status
