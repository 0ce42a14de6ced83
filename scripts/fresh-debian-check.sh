#!/usr/bin/env bash
# Runs the README's test command as a newcomer would, on a fresh Debian 12:
# a minimal Debian root made with debootstrap (--variant=minbase: only the
# packages of priority "required", less than any real installation has),
# plus Go, git and make; then a clone of this repository's HEAD and
# `make test` in it, as root in a chroot. Whatever the tests need beyond
# that must come from scripts/deps.sh, or the run fails.
#
#   scripts/fresh-debian-check.sh [ROOTDIR]     default /var/tmp/govirtd-fresh
#
# ROOTDIR is made anew on every run (the debootstrap download is cached in
# ROOTDIR.cache.tar). The log is ROOTDIR.log. Needs root, debootstrap (it
# is installed when missing) and network access to deb.debian.org and the
# Go module proxy. Takes about 15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
root=${1:-/var/tmp/govirtd-fresh}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
goroot=$(go env GOROOT)

[ "$(id -u)" = 0 ] || { echo "fresh-debian-check: needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || {
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

umount_all() {
	for m in dev proc sys run tmp; do
		umount -R -l "$root/$m" 2>/dev/null || true
	done
	if grep -q " $root " /proc/mounts; then
		umount -R -l "$root" 2>/dev/null || true
	fi
}
trap umount_all EXIT

umount_all
# Never remove a tree that still has the host's /dev or /sys mounted in it.
if grep -q " $root[/ ]" /proc/mounts; then
	echo "fresh-debian-check: $root still has mounts; not removing it" >&2
	exit 1
fi
rm -rf "$root"
mkdir -p "$root"
cache=$root.cache.tar
if [ ! -s "$cache" ]; then
	debootstrap --variant=minbase --make-tarball="$cache" bookworm "$root.tarball-work" "$mirror"
	rm -rf "$root.tarball-work"
fi
debootstrap --variant=minbase --unpack-tarball="$cache" bookworm "$root" "$mirror"

# The sources a Debian 12 installation has: its release, updates, security.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"

# The root must be a mount point of its own, as on a real machine: the
# libvirtd interop host runs in `unshare --mount`, which makes / private
# and fails with EINVAL on a chroot directory that is not a mount.
mount --bind "$root" "$root"
mount --make-private "$root"

# The host's /dev and /sys as a slave copy (mounts made under the chroot
# never propagate back), a /proc, and a fresh /run and /tmp.
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs -o size=8g tmpfs "$root/tmp"

# Go as go.dev ships it, at the path its installer uses.
mkdir -p "$root/usr/local"
cp -a "$goroot" "$root/usr/local/go"

# The clone the newcomer makes (only what is committed).
git clone -q --no-hardlinks "$repo" "$root/root/govirtd"

# A machine whose outbound https goes through an inspecting proxy trusts
# that proxy's CA (under /usr/local/share/ca-certificates): the chroot gets
# the same local CAs, or no Go module download would work. A fresh machine
# on a plain network needs none.
mkdir -p "$root/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true

# What the README asks for before its two commands: Go (above), git to
# clone, make to run them. Everything else is the test command's job.
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb PATH=/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	/bin/bash -c '
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends git make ca-certificates >/dev/null
update-ca-certificates >/dev/null 2>&1
echo "fresh-debian-check: $(dpkg-query -W | wc -l) packages installed before make test"
cd /root/govirtd
git log -1 --oneline
start=$(date +%s)
make test
echo "fresh-debian-check: make test passed in $(( $(date +%s) - start )) s"
' 2>&1 | tee "$root.log"
