package qemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

// fakeQMP is a QEMU monitor answering each command with a canned reply.
func fakeQMP(t *testing.T, replies map[string]string) *qmp.Monitor {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintln(c, `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}`)
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var req struct {
				Execute string          `json:"execute"`
				ID      json.RawMessage `json:"id"`
			}
			json.Unmarshal(sc.Bytes(), &req)
			r, ok := replies[req.Execute]
			if !ok {
				r = `{"return": {}}`
			}
			if req.ID != nil {
				r = strings.TrimSuffix(r, "}") + `, "id": ` + string(req.ID) + "}"
			}
			var b bytes.Buffer
			if err := json.Compact(&b, []byte(r)); err != nil {
				t.Errorf("fake reply %s: %v", r, err)
			}
			fmt.Fprintln(c, b.String())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := qmp.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func statsDef(t *testing.T, disk string) *libvirtxml.Domain {
	t.Helper()
	var def libvirtxml.Domain
	x := `<domain type='qemu'><name>s</name><vcpu cpuset='0-1'>2</vcpu>
	  <cputune><vcpupin vcpu='1' cpuset='1'/></cputune>
	  <devices>
	    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='` + disk + `'/><target dev='vda' bus='virtio'/><alias name='virtio-disk0'/></disk>
	    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><alias name='ide0-1-0'/></disk>
	    <interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/><alias name='net0'/></interface>
	    <memballoon model='virtio'><stats period='5'/><alias name='balloon0'/></memballoon>
	  </devices></domain>`
	if err := def.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	return &def
}

func collect() (func(string, *libvirt.TypedParamValue), *[]string) {
	var out []string
	return func(k string, v *libvirt.TypedParamValue) {
		out = append(out, fmt.Sprintf("%s=%v", k, v.I))
	}, &out
}

// TestBlockGroup: the block group of a running domain maps QEMU's
// counters and sizes to libvirt's names; an empty CD-ROM is not counted.
func TestBlockGroup(t *testing.T) {
	def := statsDef(t, "/var/lib/d.raw")
	mon := fakeQMP(t, map[string]string{
		"query-blockstats": `{"return": [{"device": "", "node-name": "libvirt-2-format", "qdev": "/machine/peripheral/virtio-disk0/virtio-backend",
			"stats": {"rd_bytes": 512, "wr_bytes": 4096, "rd_operations": 1, "wr_operations": 2, "flush_operations": 3,
			"rd_total_time_ns": 700, "wr_total_time_ns": 800, "flush_total_time_ns": 900, "wr_highest_offset": 4096},
			"parent": {"node-name": "libvirt-2-storage", "stats": {"wr_highest_offset": 8192}}},
			{"device": "", "qdev": "ide0-1-0", "stats": {}}]}`,
		"query-block": `{"return": [{"device": "", "qdev": "/machine/peripheral/virtio-disk0/virtio-backend", "type": "unknown",
			"inserted": {"file": "/var/lib/d.raw", "node-name": "libvirt-2-format", "drv": "raw",
			"image": {"virtual-size": 16777216, "filename": "/var/lib/d.raw", "format": "raw", "actual-size": 4096}}},
			{"device": "", "qdev": "ide0-1-0", "type": "unknown", "removable": true}]}`,
	})
	add, got := collect()
	(&Driver{}).blockGroup(context.Background(), def, mon, add)
	want := []string{"block.count=1", "block.0.name=vda", "block.0.path=/var/lib/d.raw", "block.0.backingIndex=2",
		"block.0.rd.reqs=1", "block.0.rd.bytes=512", "block.0.rd.times=700",
		"block.0.wr.reqs=2", "block.0.wr.bytes=4096", "block.0.wr.times=800",
		"block.0.fl.reqs=3", "block.0.fl.times=900",
		"block.0.allocation=8192", "block.0.capacity=16777216", "block.0.physical=4096"}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("got  %v\nwant %v", *got, want)
	}

	// Stopped: sizes from the image itself, no counters, no backingIndex;
	// a missing image leaves just the name and path.
	add, got = collect()
	(&Driver{}).blockGroup(context.Background(), def, nil, add)
	if want := []string{"block.count=1", "block.0.name=vda", "block.0.path=/var/lib/d.raw"}; !reflect.DeepEqual(*got, want) {
		t.Errorf("stopped: got %v\nwant %v", *got, want)
	}
}

func TestFindDiskAndNIC(t *testing.T) {
	def := statsDef(t, "/var/lib/d.raw")
	for name, want := range map[string]int{"vda": 0, "/var/lib/d.raw": 0, "hdc": 1, "vdb": -1, "": -1} {
		if got := findDisk(def, name); got != want {
			t.Errorf("findDisk(%q) = %d, want %d", name, got, want)
		}
	}
	if findNIC(def, "52:54:00:12:34:56") == nil || findNIC(def, "52:54:00:12:34:57") != nil || findNIC(def, "net0") != nil {
		t.Error("findNIC: a NIC is found by its MAC only (user NICs have no host name)")
	}
	add, got := collect()
	netGroup(def, add)
	if want := []string{"net.count=1"}; !reflect.DeepEqual(*got, want) {
		t.Errorf("net group %v", *got)
	}
}

// TestMemoryStatsFrom: libvirt's order and units; statistics the guest
// never reported are left out, last_update is always there.
func TestMemoryStatsFrom(t *testing.T) {
	gs := &qmp.GuestStats{LastUpdate: 1764755000, Stats: map[string]uint64{
		"stat-swap-in": 0, "stat-swap-out": 2048, "stat-major-faults": 20, "stat-minor-faults": 5000,
		"stat-free-memory": 80 << 20, "stat-total-memory": 120 << 20, "stat-available-memory": 90 << 20,
		"stat-disk-caches": 9 << 20, "stat-htlb-pgalloc": qmp.StatUnset, "stat-htlb-pgfail": qmp.StatUnset,
	}}
	got := memoryStatsFrom(128<<20, true, gs, 206976, true, 100)
	want := []libvirt.DomainMemoryStat{
		{Tag: 6, Val: 131072}, {Tag: 0, Val: 0}, {Tag: 1, Val: 2}, {Tag: 2, Val: 20}, {Tag: 3, Val: 5000},
		{Tag: 4, Val: 80 << 10}, {Tag: 5, Val: 120 << 10}, {Tag: 8, Val: 90 << 10}, {Tag: 9, Val: 1764755000},
		{Tag: 10, Val: 9 << 10}, {Tag: 7, Val: 206976},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	// A guest without a balloon driver: what libvirt 9.0 shows then.
	never := &qmp.GuestStats{Stats: map[string]uint64{"stat-swap-in": qmp.StatUnset}}
	got = memoryStatsFrom(128<<20, true, never, 206976, true, 100)
	if want := []libvirt.DomainMemoryStat{{Tag: 6, Val: 131072}, {Tag: 9, Val: 0}, {Tag: 7, Val: 206976}}; !reflect.DeepEqual(got, want) {
		t.Errorf("no guest driver: got %v", got)
	}
	if got := memoryStatsFrom(128<<20, true, gs, 206976, true, 2); len(got) != 2 {
		t.Errorf("max 2: got %d", len(got))
	}
}

func TestVcpuPinning(t *testing.T) {
	def := statsDef(t, "/d")
	got, err := vcpuPinning(def, 4, 16)
	if err != nil || !reflect.DeepEqual(got, [][]int{{0, 1}, {1}}) {
		t.Errorf("pinning = %v, %v", got, err)
	}
	def.VCPU.CPUSet = ""
	if got, _ := vcpuPinning(def, 4, 1); !reflect.DeepEqual(got, [][]int{{0, 1, 2, 3}}) {
		t.Errorf("no cpuset, max 1: %v", got)
	}

	def = statsDef(t, "/d")
	pinned, err := withVcpuPin(def, 0, []int{0, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if p := pinned.CPUTune.VCPUPin; len(p) != 2 || p[0].VCPU != 0 || p[0].CPUSet != "0,2-3" || p[1].CPUSet != "1" {
		t.Errorf("vcpupin = %+v", p)
	}
	if def.CPUTune.VCPUPin[0].VCPU != 1 || len(def.CPUTune.VCPUPin) != 1 {
		t.Error("the original definition changed")
	}
	// Pinned back to <vcpu cpuset>: libvirt writes no <vcpupin> for it.
	back, _ := withVcpuPin(def, 1, []int{0, 1})
	if back.CPUTune != nil {
		t.Errorf("cputune = %+v", back.CPUTune)
	}
}
