#!/usr/bin/env bash
# Runs a real libvirtd 9.0 "host" beside govirtd on one machine, for interop
# tests and benchmarks: in its own mount and UTS namespace, with private
# /run/libvirt, /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt and
# /var/log/libvirt under DIR, its own hostname, host UUID, loopback address,
# TCP port and migration ports. Runs in the foreground until killed.
#
#   test/libvirtd/host.sh DIR ADDR PORT HOSTNAME UUID MIGPORT_MIN MIGPORT_MAX
#
# More qemu.conf lines may come in $LIBVIRTD_QEMU_CONF (e.g. the
# migrate_tls_x509_cert_dir of a TLS migration test).
#
# Needs root and Debian's libvirt-daemon-system + libvirt-daemon-driver-qemu.
set -euo pipefail
dir=$1 addr=$2 port=$3 name=$4 uuid=$5 pmin=$6 pmax=$7
mkdir -p "$dir"/{run,etc,lib,cache,log}
mkdir -p "$dir/etc/qemu" "$dir/lib/qemu" "$dir/cache/qemu" "$dir/log/qemu"

cat >"$dir/etc/libvirtd.conf" <<CONF
listen_tls = 0
listen_tcp = 1
auth_tcp = "none"
listen_addr = "$addr"
tcp_port = "$port"
host_uuid = "$uuid"
unix_sock_dir = "/run/libvirt"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
cat >"$dir/etc/qemu.conf" <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
cgroup_controllers = [ ]
namespaces = [ ]
security_driver = "none"
stdio_handler = "file"
migration_address = "$addr"
migration_host = "$addr"
migration_port_min = $pmin
migration_port_max = $pmax
${LIBVIRTD_QEMU_CONF:-}
CONF

exec unshare -mu --propagation private /bin/bash -c '
set -e
dir=$1 name=$2
mount --bind "$dir/run" /run/libvirt 2>/dev/null || { mkdir -p /run/libvirt; mount --bind "$dir/run" /run/libvirt; }
mount --bind "$dir/etc" /etc/libvirt
mount --bind "$dir/lib" /var/lib/libvirt
mount --bind "$dir/cache" /var/cache/libvirt
mount --bind "$dir/log" /var/log/libvirt
hostname "$name"
exec /usr/sbin/libvirtd --listen -f /etc/libvirt/libvirtd.conf -p "$dir/libvirtd.pid"
' host.sh "$dir" "$name"
