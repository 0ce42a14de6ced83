#!/usr/bin/env bash
# Installs what govirtd's demo, tests and benchmarks need on a Debian 12
# machine: every package in test/deps/packages.txt (the list also says what
# each one provides, and the tests name the package when one is missing).
# Installs with --no-install-recommends, so the list names every package
# explicitly; does nothing when everything is there already. Needs root (or
# sudo) for apt-get.
#
#   scripts/deps.sh          install what is missing
#   scripts/deps.sh --list   print the package names, one a line
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t packages < <(sed -e 's/#.*//' test/deps/packages.txt | awk 'NF { print $1 }')
if [ "${1:-}" = --list ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "deps: Go is not installed (govirtd needs Go 1.26 or newer: https://go.dev/dl/)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
