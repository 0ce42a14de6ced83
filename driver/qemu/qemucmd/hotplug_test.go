package qemucmd

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// hasArg reports whether opt val is on the command line.
func hasArg(args []string, opt, val string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == opt && args[i+1] == val {
			return true
		}
	}
	return false
}

// TestHotplugMatchesCommandLine: a disk or NIC plugged over QMP gets
// exactly the -blockdev/-netdev and -device objects the command line has
// for it, so a plugged device cannot be told from one the domain started
// with (migration and statistics rely on the node names and ids).
func TestHotplugMatchesCommandLine(t *testing.T) {
	for _, name := range []string{"disk-virtio", "net-user"} {
		dom := loadDomain(t, name)
		cmd, err := Build(dom, suiteOptions("QEMUGuest1"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checked := 0
		for i, disk := range dom.Devices.Disks {
			if disk.Target == nil || disk.Target.Bus != "virtio" {
				continue
			}
			h, err := HotplugDisk(dom, i)
			if err != nil {
				t.Fatalf("%s disk %d: %v", name, i, err)
			}
			if len(h.Backends) != 2 {
				t.Errorf("%s disk %d: %d block nodes, want storage and format", name, i, len(h.Backends))
			}
			for _, b := range h.Backends {
				if !hasArg(cmd.Args, "-blockdev", string(b)) {
					t.Errorf("%s disk %d: blockdev %s is not on the command line", name, i, b)
				}
			}
			if !hasArg(cmd.Args, "-device", string(h.Device)) {
				t.Errorf("%s disk %d: device %s is not on the command line", name, i, h.Device)
			}
			checked++
		}
		for i := range dom.Devices.Interfaces {
			h, err := HotplugNet(dom, i, "")
			if err != nil {
				t.Fatalf("%s nic %d: %v", name, i, err)
			}
			if len(h.Backends) != 1 || !hasArg(cmd.Args, "-netdev", string(h.Backends[0])) {
				t.Errorf("%s nic %d: netdev %s is not on the command line", name, i, h.Backends)
			}
			if !hasArg(cmd.Args, "-device", string(h.Device)) {
				t.Errorf("%s nic %d: device %s is not on the command line", name, i, h.Device)
			}
			checked++
		}
		if checked == 0 {
			t.Errorf("%s: no virtio disk or NIC checked", name)
		}
	}
}

// TestHotplugDiskNodeIndex: a plugged disk's recorded <source index>
// names its nodes, and the other disks keep theirs.
func TestHotplugDiskNodeIndex(t *testing.T) {
	dom := loadDomain(t, "disk-virtio")
	AssignAliases(dom)
	before := make([]int, len(dom.Devices.Disks))
	for i := range dom.Devices.Disks {
		before[i] = DiskNodeIndex(dom, i)
	}
	disk := libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: "/tmp/new.qcow2"}, Index: 9},
		Target: &libvirtxml.DomainDiskTarget{Dev: "vdz", Bus: "virtio"},
		Alias:  &libvirtxml.DomainAlias{Name: "virtio-disk25"},
		Address: &libvirtxml.DomainAddress{PCI: &libvirtxml.DomainAddressPCI{
			Domain: new(uint), Bus: new(uint), Slot: ptr(uint(9)), Function: new(uint)}},
	}
	for i := range dom.Devices.Disks {
		if dom.Devices.Disks[i].Source != nil {
			dom.Devices.Disks[i].Source.Index = uint(before[i])
		}
	}
	dom.Devices.Disks = append(dom.Devices.Disks, disk)
	last := len(dom.Devices.Disks) - 1
	for i := range before {
		if got := DiskNodeIndex(dom, i); got != before[i] {
			t.Errorf("disk %d: node index %d after the plug, was %d", i, got, before[i])
		}
	}
	h, err := HotplugDisk(dom, last)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"node-name":"libvirt-9-storage"`, `"node-name":"libvirt-9-format"`} {
		if !slices.ContainsFunc(h.Backends, func(b json.RawMessage) bool { return strings.Contains(string(b), want) }) {
			t.Errorf("block nodes %s lack %s", h.Backends, want)
		}
	}
	if want := `{"driver":"virtio-blk-pci","bus":"pci.0","addr":"0x9","drive":"libvirt-9-format","id":"virtio-disk25"}`; string(h.Device) != want {
		t.Errorf("device = %s\nwant %s", h.Device, want)
	}
	if got := DiskNodes(dom, last); strings.Join(got, ",") != "libvirt-9-format,libvirt-9-storage" {
		t.Errorf("DiskNodes = %q", got)
	}
}

// TestHotplugTapNeedsFD: a tap NIC is plugged with the descriptor name
// it was passed under.
func TestHotplugTapNeedsFD(t *testing.T) {
	dom := loadDomain(t, "net-user")
	AssignAliases(dom)
	n := &dom.Devices.Interfaces[0]
	n.Source = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: "br0"}}
	if _, err := HotplugNet(dom, 0, ""); err == nil {
		t.Error("tap NIC without a descriptor name: no error")
	}
	h, err := HotplugNet(dom, 0, "tapfd-net0")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"tap","fd":"tapfd-net0","id":"hostnet0"}`; len(h.Backends) != 1 || string(h.Backends[0]) != want {
		t.Errorf("netdev = %s, want %s", h.Backends, want)
	}
}

func ptr[T any](v T) *T { return &v }
