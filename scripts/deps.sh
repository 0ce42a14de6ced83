#!/usr/bin/env bash
# Installs what govirtd's demo and tests need on a Debian 12 machine, and
# nothing when it is all there already. Needs root (or sudo) for apt-get.
set -euo pipefail

packages=(
  libvirt-clients   # virsh: the client the tests and the demo drive govirtd with
  python3-libvirt   # the Python binding, a second real client
  qemu-system-x86   # qemu-system-x86_64: domains are real QEMU processes
  qemu-utils        # qemu-img, for disk images in the QEMU driver tests
  gcc libc6-dev cpio # the test guest's static /init and its initramfs
  libvirt-daemon-system libvirt-daemon-driver-qemu # a real libvirtd 9.0 for the interop tests and benchmarks
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ! command -v go >/dev/null 2>&1; then
  echo "deps: Go is not installed (govirtd needs Go 1.26 or newer: https://go.dev/dl/)" >&2
  exit 1
fi

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
