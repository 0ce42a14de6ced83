#!/usr/bin/env bash
# The main job, for a newcomer: start a govirtd "host" on 127.0.0.1 and drive
# it with an unmodified virsh. Set KEEP=1 to leave the daemon running.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${DEMO_DIR:-/tmp/govirtd-demo}"
addr="${DEMO_ADDR:-127.0.0.1}"
port="${DEMO_PORT:-16509}"
mkdir -p "$dir"
cat >"$dir/govirtd.conf" <<CONF
# A libvirtd.conf-syntax file: the same keys mean the same things.
listen_tcp = 1
listen_tls = 0
auth_tcp = "none"
listen_addr = "$addr"
tcp_port = "$port"
unix_sock_dir = "$dir/run"
state_dir = "$dir/state"
hostname = "demo-host"
log_level = 2
CONF

go build -o bin/govirtd ./cmd/govirtd
if [ -f "$dir/govirtd.pid" ] && kill -0 "$(cat "$dir/govirtd.pid")" 2>/dev/null; then
  kill "$(cat "$dir/govirtd.pid")"; sleep 0.5
fi
./bin/govirtd -f "$dir/govirtd.conf" --listen -p "$dir/govirtd.pid" >"$dir/govirtd.log" 2>&1 &
daemon=$!
stop() { [ "${KEEP:-0}" = 1 ] || kill "$daemon" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 100); do
  (echo >/dev/tcp/"$addr"/"$port") 2>/dev/null && break
  kill -0 "$daemon" 2>/dev/null || { cat "$dir/govirtd.log"; exit 1; }
  sleep 0.1
done

uri="qemu+tcp://$addr:$port/system"
show() { echo; echo "\$ $*"; "$@"; }
show virsh -c "$uri" version
show virsh -c "$uri" hostname
show virsh -c "$uri" nodeinfo
show virsh -c "$uri" list --all
show virsh -c "qemu+unix:///system?socket=$dir/run/libvirt-sock-ro" -r capabilities | head -20
echo
if [ "${KEEP:-0}" = 1 ]; then
  echo "govirtd keeps running (pid $daemon, log $dir/govirtd.log). Try: virsh -c $uri"
else
  echo "Done; govirtd stopped. KEEP=1 $0 leaves it running for your own virsh session."
fi
