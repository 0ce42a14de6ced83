#!/usr/bin/env bash
# Build the test guest: OUTDIR/vmlinuz (Debian cloud kernel) and
# OUTDIR/initrd.img (newc cpio, gzip, holding a static /init and the
# kernel modules it loads: ACPI power button, virtio disk and balloon).
#
#   test/guest/build.sh [OUTDIR]      default OUTDIR: test/guest/out
#
# Idempotent and cached: each output is rebuilt only when its inputs changed
# (kernel package name+version; init.c, this script, gcc version).
# Environment:
#   GUEST_KERNEL_PKG  concrete kernel package to use instead of resolving
#                     linux-image-cloud-amd64 (e.g. linux-image-6.1.0-56-cloud-amd64)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)

log() { echo "build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Run as root, or through sudo when there is one (apt-get needs root).
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_update_once() {
	if [ $apt_updated = 0 ]; then
		log "apt-get update"
		as_root apt-get update -qq >&2
		apt_updated=1
	fi
}

# --- tools ----------------------------------------------------------------
need=()
command -v cpio >/dev/null || need+=(cpio)
command -v gzip >/dev/null || need+=(gzip)
command -v gcc >/dev/null || need+=(gcc)
# Static linking needs libc.a, which libc6-dev ships.
[ -e "$(gcc -print-file-name=libc.a 2>/dev/null || echo /nonexistent)" ] ||
	dpkg -s libc6-dev >/dev/null 2>&1 || need+=(libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; then
		apt_update_once
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
	fi
fi

# --- kernel ---------------------------------------------------------------
# Resolve the metapackage to the concrete image package it depends on, and
# its candidate version; these two are the kernel's cache key.
resolve_kernel() {
	local pkg=${GUEST_KERNEL_PKG:-}
	if [ -z "$pkg" ]; then
		pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-.*-cloud-amd64$/ { print $2; exit }')
	fi
	[ -n "$pkg" ] || return 1
	local ver
	ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }')
	[ -n "$ver" ] && [ "$ver" != "(none)" ] || return 1
	echo "$pkg=$ver"
}

kstamp=$out/kernel.stamp
if ! kkey=$(resolve_kernel); then
	if [ -s "$out/vmlinuz" ] && [ -s "$kstamp" ]; then
		# No apt lists (offline, fresh container): keep what we have.
		kkey=$(cat "$kstamp")
	else
		apt_update_once
		kkey=$(resolve_kernel) || die "cannot resolve linux-image-cloud-amd64"
	fi
fi

# The modules /init loads (drivers/… paths in the kernel package), in the
# order it loads them: the ACPI power button and its input events, virtio
# over PCI, the virtio disk and balloon. None needs a module not listed.
modules=(acpi/button input/evdev virtio/virtio_ring virtio/virtio virtio/virtio_pci_legacy_dev
	virtio/virtio_pci_modern_dev virtio/virtio_pci block/virtio_blk virtio/virtio_balloon)
have_modules() {
	local m
	for m in "${modules[@]}"; do [ -s "$out/modules/$(basename "$m").ko" ] || return 1; done
}

if [ -s "$out/vmlinuz" ] && have_modules && [ "$(cat "$kstamp" 2>/dev/null)" = "$kkey" ]; then
	log "kernel up to date: $kkey"
else
	log "fetching kernel $kkey"
	tmp=$(mktemp -d "$out/.kernel.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# apt-get download writes into the cwd; the sandbox user option avoids
	# the _apt permission warning for a root-owned directory.
	(cd "$tmp" && as_root apt-get download -qq -o APT::Sandbox::User=root "$kkey" >&2)
	deb=$(ls "$tmp"/*.deb)
	# Same as dpkg-deb -x, but unpack only /boot and the modules /init
	# loads: the other modules (~100 MB) are of no use.
	mkdir "$tmp/x"
	patterns=()
	for m in "${modules[@]}"; do patterns+=("./lib/modules/*/kernel/drivers/$m.ko"); done
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" --wildcards './boot/vmlinuz-*' './boot/config-*' "${patterns[@]}"
	cfg=$(ls "$tmp"/x/boot/config-*)
	rm -rf "$out/modules" && mkdir "$out/modules"
	for m in "${modules[@]}"; do
		f=$(find "$tmp/x/lib/modules" -path "*/drivers/$m.ko")
		[ -n "$f" ] || die "$kkey: no module drivers/$m.ko (built in? then /init need not load it)"
		cp "$f" "$out/modules/"
	done
	# The initramfs has no modules, so the serial console must be built in.
	grep -qx 'CONFIG_SERIAL_8250_CONSOLE=y' "$cfg" || die "$kkey: serial 8250 console not built in"
	grep -qx 'CONFIG_DEVTMPFS=y' "$cfg" || die "$kkey: no devtmpfs"
	cp "$cfg" "$out/kernel.config"
	cp "$(ls "$tmp"/x/boot/vmlinuz-*)" "$out/vmlinuz.tmp"
	mv "$out/vmlinuz.tmp" "$out/vmlinuz"
	basename "$(ls "$tmp"/x/boot/vmlinuz-*)" | sed 's/^vmlinuz-//' >"$out/kernel.release"
	echo "$kkey" >"$kstamp"
	rm -rf "$tmp"
	trap - EXIT
fi

# --- initramfs ------------------------------------------------------------
cflags=(-static -O2 -s -Wall -Wextra)
ikey=$( { cat "$here/init.c" "$here/build.sh" "$out"/modules/*.ko; echo "${cflags[*]}"; gcc --version | head -1; } | sha256sum | cut -d' ' -f1)
istamp=$out/initrd.stamp
if [ -s "$out/initrd.img" ] && [ "$(cat "$istamp" 2>/dev/null)" = "$ikey" ]; then
	log "initrd up to date"
else
	log "building initrd"
	tmp=$(mktemp -d "$out/.initrd.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	gcc "${cflags[@]}" -o "$tmp/init" "$here/init.c"
	root=$tmp/root
	mkdir -p "$root/dev" "$root/proc" "$root/modules"
	install -m 0755 "$tmp/init" "$root/init"
	install -m 0644 "$out"/modules/*.ko "$root/modules/"
	# /dev/console lets the kernel hand init its stdio (and avoids the
	# "unable to open an initial console" warning).  init mounts devtmpfs
	# and opens the console itself anyway, so without mknod rights the
	# guest still works.
	mknod -m 0600 "$root/dev/console" c 5 1 2>/dev/null || log "warning: no mknod, /dev/console left to devtmpfs"
	# Fixed mtimes, owner and order: the same input gives the same bytes.
	find "$root" -exec touch -h -d @0 {} +
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9 -n >"$tmp/initrd.img"
	mv "$tmp/initrd.img" "$out/initrd.img"
	echo "$ikey" >"$istamp"
	rm -rf "$tmp"
	trap - EXIT
fi

echo "$out/vmlinuz"
echo "$out/initrd.img"
