package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/qemucmd"
	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

func diskTarget(disk *libvirtxml.DomainDisk) string {
	if disk.Target == nil {
		return ""
	}
	return disk.Target.Dev
}

// findTarget is virDomainDiskIndexByName by target only: the index of
// the disk with target dev, or -1.
func findTarget(def *libvirtxml.Domain, dev string) int {
	if def == nil || def.Devices == nil {
		return -1
	}
	for i := range def.Devices.Disks {
		if diskTarget(&def.Devices.Disks[i]) == dev {
			return i
		}
	}
	return -1
}

// errQMP words a failed QMP command as libvirt's monitor code does.
func errQMP(err error) error {
	var ce *qmp.CommandError
	if errors.As(err, &ce) {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "unable to execute QEMU command '%s': %s", ce.Command, ce.Desc)
	}
	return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "%v", err)
}

// liveDevice is the device as libvirt would have it in the live
// definition: defaults and a PCI address chosen against the devices the
// running domain has. A device that would need a new controller (a
// pcie-root-port on q35) cannot be plugged: controllers are not
// hot-pluggable.
func (d *Driver) liveDevice(live *libvirtxml.Domain, add func(dv *libvirtxml.DomainDeviceList)) (*libvirtxml.Domain, error) {
	full, err := d.withDefaults(live, add)
	if err != nil {
		return nil, err
	}
	if len(full.Devices.Controllers) != len(live.Devices.Controllers) {
		return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "No more available PCI slots")
	}
	return full, nil
}

// attachDiskLive is qemuDomainAttachDiskGeneric: the disk's block nodes
// (blockdev-add, storage then format), then its device (device_add).
func (d *Driver) attachDiskLive(ctx context.Context, dom *domain, live *libvirtxml.Domain, disk *libvirtxml.DomainDisk) error {
	dev := diskTarget(disk)
	if findTarget(live, dev) >= 0 {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "target %s already exists", dev)
	}
	if disk.Device == "cdrom" || disk.Device == "floppy" {
		return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "cdrom/floppy device hotplug isn't supported")
	}
	if disk.Target != nil {
		switch disk.Target.Bus {
		case "ide", "sata", "fdc":
			return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "disk bus '%s' cannot be hotplugged.", disk.Target.Bus)
		}
	}
	full, err := d.liveDevice(live, func(dv *libvirtxml.DomainDeviceList) { dv.Disks = append(dv.Disks, *disk) })
	if err != nil {
		return err
	}
	pos := findTarget(full, dev)
	if pos < 0 {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "disk %s vanished from its definition", dev)
	}
	added := full.Devices.Disks[pos]
	added.Alias = nil
	one := &libvirtxml.Domain{Devices: &libvirtxml.DomainDeviceList{Disks: []libvirtxml.DomainDisk{added}}}
	qemucmd.AssignAliases(one)
	added = one.Devices.Disks[0]
	if err := domainxml.PrepareHotplugDisk(live.Devices, &added, domainxml.Runtime{BackingChain: domainxml.BackingChain}); err != nil {
		return err
	}
	insert := func(def *libvirtxml.Domain) *libvirtxml.Domain {
		return withDevices(def, func(dv *libvirtxml.DomainDeviceList) {
			dv.Disks = slices.Insert(dv.Disks, min(pos, len(dv.Disks)), added)
		})
	}
	next := insert(live)
	h, err := qemucmd.HotplugDisk(next, pos)
	if err != nil {
		return err
	}
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	var nodes []string
	undo := func() {
		for i := len(nodes) - 1; i >= 0; i-- {
			if err := mon.BlockdevDel(ctx, nodes[i]); err != nil {
				d.log.Warn("cannot remove a block node after a failed attach", "domain", dom.name, "node", nodes[i], "err", err)
			}
		}
	}
	for _, b := range h.Backends {
		if err := mon.BlockdevAdd(ctx, b); err != nil {
			undo()
			return errQMP(err)
		}
		nodes = append(nodes, nodeName(b))
	}
	if err := mon.DeviceAdd(ctx, h.Device); err != nil {
		undo()
		return errQMP(err)
	}
	return d.updateLive(dom, insert)
}

func nodeName(props json.RawMessage) string {
	var v struct {
		NodeName string `json:"node-name"`
	}
	json.Unmarshal(props, &v)
	return v.NodeName
}

// detachDiskLive is qemuDomainDetachPrepDisk and qemuDomainRemoveDiskDevice:
// device_del, and once the guest has let the disk go, its block nodes
// and its place in the live definition.
func (d *Driver) detachDiskLive(ctx context.Context, dom *domain, live *libvirtxml.Domain, match *libvirtxml.DomainDisk) error {
	dev := diskTarget(match)
	i := findTarget(live, dev)
	if i < 0 {
		return compat.Errorf(libvirt.ErrDeviceMissing, compat.FromQEMU, "disk %s not found", dev)
	}
	disk := &live.Devices.Disks[i]
	switch disk.Device {
	case "cdrom", "floppy":
		return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "disk device type '%s' cannot be detached", disk.Device)
	}
	if disk.Target == nil || (disk.Target.Bus != "virtio" && disk.Target.Bus != "scsi" && disk.Target.Bus != "usb") {
		return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "This type of disk cannot be hot unplugged")
	}
	id := ""
	if disk.Alias != nil {
		id = disk.Alias.Name
	}
	nodes := qemucmd.DiskNodes(live, i)
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	finish := func(ctx context.Context) {
		for _, n := range nodes {
			if err := mon.BlockdevDel(ctx, n); err != nil {
				d.log.Warn("cannot remove a detached disk's block node", "domain", dom.name, "node", n, "err", err)
			}
		}
		err := d.updateLive(dom, func(cur *libvirtxml.Domain) *libvirtxml.Domain {
			return withDevices(cur, func(dv *libvirtxml.DomainDeviceList) {
				dv.Disks = slices.DeleteFunc(dv.Disks, func(k libvirtxml.DomainDisk) bool { return k.Alias != nil && k.Alias.Name == id })
			})
		})
		if err != nil {
			d.log.Warn("cannot record a disk removal", "domain", dom.name, "disk", dev, "err", err)
		}
	}
	gone, err := d.unplugThen(ctx, dom, mon, id, finish)
	if err != nil {
		return err
	}
	if gone {
		finish(ctx)
	}
	return nil
}
