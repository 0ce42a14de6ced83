package storagecopy

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
	"github.com/govirtd/govirtd/test/deps"
)

func liveDomain(t *testing.T) *libvirtxml.Domain {
	t.Helper()
	d := &libvirtxml.Domain{}
	err := d.Unmarshal(`<domain type='qemu'><name>x</name><devices>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/a.qcow2'/><target dev='vda' bus='virtio'/><alias name='virtio-disk0'/></disk>
  <disk type='file' device='disk'><source file='/img/b.raw'/><target dev='vdb' bus='virtio'/><readonly/><alias name='virtio-disk1'/></disk>
  <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/><alias name='sata0-0-0'/></disk>
  <disk type='file' device='disk'><source file='/img/c.raw'/><target dev='vdc' bus='virtio'/><shareable/><alias name='virtio-disk2'/></disk>
</devices></domain>`)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Select copies, by default, only writable, unshared disks with media; a
// list names the disks, and an unknown or empty/read-only one is an error
// in libvirt's words.
func TestSelect(t *testing.T) {
	def := liveDomain(t)
	got, err := Select(def, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Disk{{Target: "vda", Export: "drive-virtio-disk0", Node: "libvirt-4-format", Path: "/img/a.qcow2", Format: "qcow2"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Select = %+v\nwant %+v", got, want)
	}
	got, err = Select(def, []string{"vdc"})
	if err != nil || len(got) != 1 || got[0].Target != "vdc" || got[0].Node != "libvirt-1-format" || got[0].Format != "raw" {
		t.Errorf("Select(vdc) = %+v, %v", got, err)
	}
	if _, err := Select(def, []string{"vdz"}); !compat.Is(err, libvirt.ErrInvalidArg) || !strings.Contains(err.Error(), "disk target vdz not found") {
		t.Errorf("unknown disk: %v", err)
	}
	if _, err := Select(def, []string{"sda"}); !compat.Is(err, libvirt.ErrOperationUnsupported) || !strings.Contains(err.Error(), "Cannot migrate empty or read-only disk sda") {
		t.Errorf("empty cdrom: %v", err)
	}
}

// Precreate makes only the missing images, with the format and capacity
// asked, and refuses to invent an incremental copy's base.
func TestPrecreate(t *testing.T) {
	deps.Require(t, "qemu-img")
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.raw")
	os.WriteFile(existing, []byte("keep"), 0o644)
	disks := []Disk{
		{Target: "vda", Path: filepath.Join(dir, "new.qcow2"), Format: "qcow2"},
		{Target: "vdb", Path: existing, Format: "raw"},
	}
	created, err := Precreate(context.Background(), disks, map[string]uint64{"vda": 1 << 20, "vdb": 1 << 20}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(created, []string{disks[0].Path}) {
		t.Errorf("created %v", created)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Errorf("existing image touched: %q", b)
	}
	if b, _ := os.ReadFile(disks[0].Path); len(b) < 4 || string(b[:4]) != "QFI\xfb" {
		t.Errorf("new image is not qcow2")
	}
	RemoveCreated(created)
	if _, err := Precreate(context.Background(), disks[:1], map[string]uint64{"vda": 1 << 20}, true); !compat.Is(err, libvirt.ErrOperationUnsupported) {
		t.Errorf("incremental precreate: %v", err)
	}
	if _, err := os.Stat(disks[0].Path); !os.IsNotExist(err) {
		t.Errorf("refused precreate left a file: %v", err)
	}
}

// fakeMonitor records calls and answers block job queries from a script.
type fakeMonitor struct {
	calls []string
	jobs  [][]qmp.BlockJob // successive query-block-jobs answers (last repeats)
	nodes []qmp.BlockNode
}

func (f *fakeMonitor) rec(s string) error { f.calls = append(f.calls, s); return nil }
func (f *fakeMonitor) NBDServerStart(_ context.Context, a qmp.NBDAddress, tls string) error {
	return f.rec("nbd-server-start")
}
func (f *fakeMonitor) NBDServerStop(context.Context) error { return f.rec("nbd-server-stop") }
func (f *fakeMonitor) BlockExportAddNBD(_ context.Context, id, node, name string, w bool) error {
	return f.rec("block-export-add " + node + " " + name)
}
func (f *fakeMonitor) BlockdevAddNBD(_ context.Context, node string, a qmp.NBDAddress, e, tls, tlsHost string) error {
	return f.rec("blockdev-add " + node + " " + e)
}
func (f *fakeMonitor) BlockdevDel(_ context.Context, node string) error {
	return f.rec("blockdev-del " + node)
}
func (f *fakeMonitor) BlockdevMirror(_ context.Context, m qmp.Mirror) error {
	return f.rec("blockdev-mirror " + m.JobID + " " + m.Device + " " + m.Target + " " + m.Sync)
}
func (f *fakeMonitor) QueryBlockJobs(context.Context) ([]qmp.BlockJob, error) {
	j := f.jobs[0]
	if len(f.jobs) > 1 {
		f.jobs = f.jobs[1:]
	}
	return j, nil
}
func (f *fakeMonitor) BlockJobCancel(_ context.Context, id string, force bool) error {
	if force {
		return f.rec("block-job-cancel force " + id)
	}
	return f.rec("block-job-cancel " + id)
}
func (f *fakeMonitor) JobDismiss(_ context.Context, id string) error {
	return f.rec("job-dismiss " + id)
}
func (f *fakeMonitor) QueryNamedBlockNodes(context.Context) ([]qmp.BlockNode, error) {
	return f.nodes, nil
}

// The source's sequence: attach, mirror, wait for ready, complete
// cleanly, dismiss, detach; a mirror that fails while copying fails the
// wait with its error.
func TestMirrorLifecycle(t *testing.T) {
	disk := Disk{Target: "vda", Export: "drive-virtio-disk0", Node: "libvirt-1-format"}
	running := qmp.BlockJob{Device: disk.Export, Type: "mirror", Len: 100, Offset: 40, Status: "running"}
	ready := qmp.BlockJob{Device: disk.Export, Type: "mirror", Len: 100, Offset: 100, Status: "ready", Ready: true}
	concluded := qmp.BlockJob{Device: disk.Export, Type: "mirror", Len: 100, Offset: 100, Status: "concluded"}
	f := &fakeMonitor{jobs: [][]qmp.BlockJob{{running}, {ready}, {concluded}}}
	ctx := context.Background()
	if err := Mirror(ctx, f, []Disk{disk}, MirrorOptions{Addr: qmp.NBDAddress{Host: "127.0.0.2", Port: 49153}}); err != nil {
		t.Fatal(err)
	}
	var seen []Progress
	if err := WaitReady(ctx, f, []Disk{disk}, 1, func(p Progress) { seen = append(seen, p) }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != (Progress{100, 40, 60}) || seen[1] != (Progress{100, 100, 0}) {
		t.Errorf("progress %+v", seen)
	}
	if err := Complete(ctx, f, []Disk{disk}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"blockdev-add migration-vda-storage drive-virtio-disk0",
		"blockdev-mirror drive-virtio-disk0 libvirt-1-format migration-vda-storage full",
		"block-job-cancel drive-virtio-disk0",
		"job-dismiss drive-virtio-disk0",
		"blockdev-del migration-vda-storage",
	}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}

	failed := qmp.BlockJob{Device: disk.Export, Type: "mirror", Status: "concluded", Error: "Input/output error"}
	f = &fakeMonitor{jobs: [][]qmp.BlockJob{{running}, {failed}}}
	err := WaitReady(ctx, f, []Disk{disk}, 1, nil)
	if !compat.Is(err, libvirt.ErrOperationFailed) || !strings.Contains(err.Error(), "migration of disk vda failed: Input/output error") {
		t.Errorf("failed mirror: %v", err)
	}
}

// Leftovers finds what a dead daemon's migration left in QEMU.
func TestLeftovers(t *testing.T) {
	f := &fakeMonitor{
		jobs:  [][]qmp.BlockJob{{{Device: "drive-virtio-disk0", Type: "mirror", Status: "ready"}, {Device: "backup0", Type: "backup"}}},
		nodes: []qmp.BlockNode{{NodeName: "libvirt-1-format"}, {NodeName: "migration-vda-storage"}},
	}
	got, err := Leftovers(context.Background(), f)
	if err != nil || !reflect.DeepEqual(got, []Disk{{Export: "drive-virtio-disk0", Target: "vda"}}) {
		t.Errorf("Leftovers = %+v, %v", got, err)
	}
}
