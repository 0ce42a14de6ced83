package qemu

import (
	"context"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/qemucmd"
)

// withMedium is disk with the medium (source and format) of newDisk: a
// CD-ROM or floppy whose media changed. No source is an empty drive.
func withMedium(disk libvirtxml.DomainDisk, newDisk *libvirtxml.DomainDisk) libvirtxml.DomainDisk {
	disk.Source = nil
	disk.BackingStore = nil
	if src := newDisk.Source; src != nil && (src.File != nil && src.File.File != "" || src.Block != nil && src.Block.Dev != "") {
		s := *src
		s.Index = 0
		disk.Source = &s
	}
	if newDisk.Driver != nil && newDisk.Driver.Type != "" {
		drv := libvirtxml.DomainDiskDriver{Name: "qemu"}
		if disk.Driver != nil {
			drv = *disk.Driver
		}
		drv.Type = newDisk.Driver.Type
		disk.Driver = &drv
	}
	return disk
}

// updateMediaConfig is qemuDomainUpdateDeviceConfig for a disk: the
// persistent definition's drive gets the new medium.
func updateMediaConfig(config *libvirtxml.Domain, newDisk *libvirtxml.DomainDisk) (*libvirtxml.Domain, error) {
	dev := diskTarget(newDisk)
	i := findTarget(config, dev)
	if i < 0 {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "target %s doesn't exist.", dev)
	}
	if d := config.Devices.Disks[i].Device; d != "cdrom" && d != "floppy" {
		return nil, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "persistent update of device 'disk' is not supported")
	}
	changed := withMedium(config.Devices.Disks[i], newDisk)
	return withDevices(config, func(dv *libvirtxml.DomainDeviceList) { dv.Disks[i] = changed }), nil
}

// changeMediaLive is qemuDomainChangeMediaBlockdev: the tray is opened
// (forced with VIR_DOMAIN_DEVICE_MODIFY_FORCE, even if the guest locked
// it), the old medium removed, the new one's nodes added and inserted,
// the tray closed, and the old medium's nodes deleted. A tray the guest
// keeps locked without force makes the removal fail; govirtd does not
// wait for the guest to open it as libvirt does.
func (d *Driver) changeMediaLive(ctx context.Context, dom *domain, live *libvirtxml.Domain, newDisk *libvirtxml.DomainDisk, force bool) error {
	dev := diskTarget(newDisk)
	i := findTarget(live, dev)
	if i < 0 {
		bus := ""
		if newDisk.Target != nil {
			bus = newDisk.Target.Bus
		}
		return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "No device with bus '%s' and target '%s'. cdrom and floppy device hotplug isn't supported by libvirt", bus, dev)
	}
	orig := live.Devices.Disks[i]
	if orig.Device != "cdrom" && orig.Device != "floppy" {
		return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "live update of device 'disk' is not supported")
	}
	if orig.Alias == nil || orig.Alias.Name == "" {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "device alias not found")
	}
	id := orig.Alias.Name
	changed := withMedium(orig, newDisk)
	if err := domainxml.PrepareHotplugDisk(live.Devices, &changed, domainxml.Runtime{BackingChain: domainxml.BackingChain}); err != nil {
		return err
	}
	next := withDevices(live, func(dv *libvirtxml.DomainDeviceList) { dv.Disks[i] = changed })
	var h qemucmd.Hotplug
	if changed.Source != nil {
		var err error
		if h, err = qemucmd.HotplugDisk(next, i); err != nil {
			return err
		}
	}
	oldNodes := qemucmd.DiskNodes(live, i)
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	if err := mon.BlockdevOpenTray(ctx, id, force); err != nil {
		return errQMP(err)
	}
	if err := mon.BlockdevRemoveMedium(ctx, id); err != nil {
		return errQMP(err)
	}
	var added []string
	for _, b := range h.Backends {
		if err := mon.BlockdevAdd(ctx, b); err != nil {
			for k := len(added) - 1; k >= 0; k-- {
				mon.BlockdevDel(ctx, added[k])
			}
			return errQMP(err)
		}
		added = append(added, nodeName(b))
	}
	if len(added) > 0 {
		// The format node, added last, is the drive's root.
		if err := mon.BlockdevInsertMedium(ctx, id, added[len(added)-1]); err != nil {
			return errQMP(err)
		}
	}
	if err := mon.BlockdevCloseTray(ctx, id); err != nil {
		return errQMP(err)
	}
	for _, n := range oldNodes {
		if err := mon.BlockdevDel(ctx, n); err != nil {
			d.log.Warn("cannot remove an ejected medium's block node", "domain", dom.name, "node", n, "err", err)
		}
	}
	return d.updateLive(dom, func(cur *libvirtxml.Domain) *libvirtxml.Domain {
		return withDevices(cur, func(dv *libvirtxml.DomainDeviceList) {
			for k := range dv.Disks {
				if diskTarget(&dv.Disks[k]) == dev {
					dv.Disks[k] = changed
				}
			}
		})
	})
}
