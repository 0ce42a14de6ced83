package qemu

import (
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/driver/qemu/snapshot"
)

func snapTestDomain(t *testing.T, disks string) *libvirtxml.Domain {
	t.Helper()
	d := &libvirtxml.Domain{}
	if err := d.Unmarshal("<domain type='qemu'><name>g</name><devices>" + disks + "</devices></domain>"); err != nil {
		t.Fatal(err)
	}
	return d
}

// alignDisks gives every disk a location and external ones libvirt's
// default file names: the image's name with its extension replaced by
// the snapshot's name (or the name appended).
func TestAlignDisksExternalNames(t *testing.T) {
	dom := snapTestDomain(t, `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/i/a.qcow2'/><target dev='vda' bus='virtio'/></disk>`+
		`<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/i/noext'/><target dev='vdb' bus='virtio'/></disk>`+
		`<disk type='file' device='cdrom'><source file='/i/cd.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>`)
	def := &libvirtxml.DomainSnapshot{Name: "s1"}
	if err := alignDisks(def, dom, snapshot.LocationExternal, false); err != nil {
		t.Fatal(err)
	}
	got := def.Disks.Disks
	if len(got) != 3 {
		t.Fatalf("disks: %+v", got)
	}
	if got[0].Source.File.File != "/i/a.s1" || got[1].Source.File.File != "/i/noext.s1" || got[0].Driver.Type != "qcow2" {
		t.Errorf("names: %q %q", got[0].Source.File.File, got[1].Source.File.File)
	}
	if got[2].Snapshot != snapshot.LocationNo {
		t.Errorf("a read-only cdrom is snapshotted: %+v", got[2])
	}

	// Two images that differ only in their extension collide.
	dom = snapTestDomain(t, `<disk type='file' device='disk'><source file='/i/a.qcow2'/><target dev='vda' bus='virtio'/></disk>`+
		`<disk type='file' device='disk'><source file='/i/a.raw'/><target dev='vdb' bus='virtio'/></disk>`)
	err := alignDisks(&libvirtxml.DomainSnapshot{Name: "s"}, dom, snapshot.LocationExternal, false)
	if err == nil || !strings.Contains(err.Error(), "cannot generate external snapshot name for disk 'vdb': collision with disk 'vda'") {
		t.Errorf("collision: %v", err)
	}
	// A disk the snapshot names that the domain lacks.
	def = &libvirtxml.DomainSnapshot{Name: "s", Disks: &libvirtxml.DomainSnapshotDisks{Disks: []libvirtxml.DomainSnapshotDisk{{Name: "vdz"}}}}
	if err := alignDisks(def, dom, snapshot.LocationInternal, true); err == nil || !strings.Contains(err.Error(), "no disk named 'vdz'") {
		t.Errorf("unknown disk: %v", err)
	}
}

// prepareSnapshot refuses what qemuSnapshotPrepare refuses.
func TestPrepareSnapshotChecks(t *testing.T) {
	raw := snapTestDomain(t, `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/i/r.img'/><target dev='vda' bus='virtio'/></disk>`)
	def := &libvirtxml.DomainSnapshot{Name: "s", State: snapshot.StateRunning, Memory: &libvirtxml.DomainSnapshotMemory{Snapshot: snapshot.LocationInternal}}
	if err := alignDisks(def, raw, snapshot.LocationInternal, true); err != nil {
		t.Fatal(err)
	}
	if _, err := prepareSnapshot(def, raw, true, false); err == nil || !strings.Contains(err.Error(), "internal snapshot for disk vda unsupported for storage type raw") {
		t.Errorf("raw disk: %v", err)
	}
	none := snapTestDomain(t, "")
	def = &libvirtxml.DomainSnapshot{Name: "s", State: snapshot.StateRunning, Memory: &libvirtxml.DomainSnapshotMemory{Snapshot: snapshot.LocationInternal}}
	alignDisks(def, none, snapshot.LocationInternal, true)
	if _, err := prepareSnapshot(def, none, true, false); err == nil || !strings.Contains(err.Error(), "internal and full system snapshots require all disks to be selected for snapshot") {
		t.Errorf("no disks: %v", err)
	}
}
