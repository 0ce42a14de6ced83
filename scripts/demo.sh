#!/usr/bin/env bash
# The main job, for a newcomer: two govirtd "hosts" on this machine
# (127.0.0.2 and 127.0.0.3, each with its own config, sockets, state, host
# UUID and hostname), a tiny Linux guest started on the first one with an
# unmodified virsh, and a live migration to the second one and back while
# the guest's serial counter keeps ticking.
# KEEP=1 leaves both daemons (and the guest) running for your own session.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${DEMO_DIR:-/tmp/govirtd-demo}"
port="${DEMO_PORT:-16509}"
rm -rf "$dir"
mkdir -p "$dir"

go build -o bin/govirtd ./cmd/govirtd
read -r kernel initrd < <(test/guest/build.sh 2>"$dir/guest-build.log" | paste -sd' ')

pids=()
stop_all() {
  [ "${KEEP:-0}" = 1 ] && return
  for h in a b; do
    virsh -c "qemu+tcp://127.0.0.$([ $h = a ] && echo 2 || echo 3):$port/system" destroy demo >/dev/null 2>&1 || true
  done
  kill "${pids[@]}" 2>/dev/null || true
  pkill -f "qemu-system.*$dir" 2>/dev/null || true
}
trap stop_all EXIT

start_host() { # name addr uuid
  local name=$1 addr=$2 uuid=$3 d="$dir/$1"
  mkdir -p "$d"
  cat >"$d/qemu.conf" <<CONF
migration_address = "$addr"
migration_host = "$addr"
CONF
  cat >"$d/govirtd.conf" <<CONF
# libvirtd.conf syntax: the same keys mean the same things.
listen_tcp = 1
listen_tls = 0
auth_tcp = "none"
listen_addr = "$addr"
tcp_port = "$port"
unix_sock_dir = "$d/run"
state_dir = "$d/state"
hostname = "$name"
host_uuid = "$uuid"
qemu_config = "$d/qemu.conf"
log_level = 2
# Both hosts share this machine's network: neither makes libvirt's
# default network (virbr0, 192.168.122.1) on it.
network_default = 0
CONF
  ./bin/govirtd -f "$d/govirtd.conf" --listen -p "$d/govirtd.pid" >"$d/govirtd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    (echo >/dev/tcp/"$addr"/"$port") 2>/dev/null && return
    sleep 0.1
  done
  cat "$d/govirtd.log"; exit 1
}
start_host host-a 127.0.0.2 11111111-aaaa-4aaa-8aaa-000000000002
start_host host-b 127.0.0.3 11111111-bbbb-4bbb-8bbb-000000000003
A="qemu+tcp://127.0.0.2:$port/system"
B="qemu+tcp://127.0.0.3:$port/system"

cat >"$dir/demo.xml" <<XML
<domain type='qemu'>
  <name>demo</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$kernel</kernel>
    <initrd>$initrd</initrd>
    <cmdline>console=ttyS0 quiet cryptomgr.notests acpi=off pti=on tick_ms=200 dirty_mb=16 dirty_rate_mb=4</cmdline>
  </os>
  <devices>
    <serial type='file'>
      <source path='$dir/demo.serial' append='on'/>
      <target port='0'/>
    </serial>
  </devices>
</domain>
XML

show() { echo; echo "\$ $*"; "$@"; }
last_tick() { grep 'GUEST TICK' "$dir/demo.serial" | tail -1; }
wait_tick() { for _ in $(seq 300); do grep -q 'GUEST TICK' "$dir/demo.serial" 2>/dev/null && return; sleep 0.1; done; }

show virsh -c "$A" hostname
show virsh -c "$B" hostname
show virsh -c "$A" define "$dir/demo.xml"
show virsh -c "$A" start demo
wait_tick; sleep 1
echo; echo "guest serial on host-a: $(last_tick)"
show virsh -c "$A" dominfo demo

start=$(date +%s%N)
show virsh -c "$A" migrate --live --verbose demo "$B"
end=$(date +%s%N)
echo "(virsh migrate took $(( (end - start) / 1000000 )) ms)"
show virsh -c "$A" list --all
show virsh -c "$B" list --all
sleep 1; echo; echo "guest serial now (running on host-b): $(last_tick)"
show virsh -c "$A" domjobinfo --completed demo

show virsh -c "$B" migrate --live --p2p demo "$A"
sleep 1; echo; echo "guest serial now (back on host-a): $(last_tick)"
echo "boot ids seen: $(grep -o 'GUEST TICK id=[0-9a-f]*' "$dir/demo.serial" | sort -u | wc -l) (one boot: the guest moved, it did not restart)"

echo
if [ "${KEEP:-0}" = 1 ]; then
  echo "Both hosts keep running. Try: virsh -c $A list; virsh -c $A migrate --live --p2p demo $B"
else
  echo "Done; hosts stopped. KEEP=1 $0 leaves them running for your own virsh session."
fi
