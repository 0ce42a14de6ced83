package qemucmd

import (
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// AssignAliases gives every device the alias libvirt 9.0's
// qemuAssignDeviceAliases (src/qemu/qemu_alias.c) gives it when the domain
// starts. The command line uses the aliases as QEMU ids, and QEMU matches
// migrated device state by id, so these names are part of the migration
// contract with libvirt. Aliases already present (from a live XML or a
// migration cookie) are kept, so calling it twice changes nothing.
func AssignAliases(dom *libvirtxml.Domain) {
	if dom == nil || dom.Devices == nil {
		return
	}
	d := dom.Devices
	q35 := isQ35(dom)

	for i := range d.Disks {
		setAlias(&d.Disks[i].Alias, diskAlias(&d.Disks[i], i))
	}
	for i := range d.Controllers {
		setAlias(&d.Controllers[i].Alias, controllerAlias(&d.Controllers[i], q35))
	}
	for i := range d.Filesystems {
		setAlias(&d.Filesystems[i].Alias, fmt.Sprintf("fs%d", i))
	}
	for i := range d.Interfaces {
		setAlias(&d.Interfaces[i].Alias, fmt.Sprintf("net%d", i))
	}
	for i := range d.Smartcards {
		setAlias(&d.Smartcards[i].Alias, fmt.Sprintf("smartcard%d", i))
	}
	for i := range d.Serials {
		setAlias(&d.Serials[i].Alias, fmt.Sprintf("serial%d", i))
	}
	for i := range d.Parallels {
		setAlias(&d.Parallels[i].Alias, fmt.Sprintf("parallel%d", i))
	}
	for i := range d.Channels {
		setAlias(&d.Channels[i].Alias, fmt.Sprintf("channel%d", i))
	}
	for i := range d.Consoles {
		// The first <console> of target type serial is only a second view
		// of the first <serial>: libvirt copies that serial's alias rather
		// than inventing a console alias (the live XML shows serial0).
		if i == 0 && len(d.Serials) > 0 && consoleIsSerial(&d.Consoles[0]) {
			if d.Serials[0].Alias != nil {
				setAlias(&d.Consoles[i].Alias, d.Serials[0].Alias.Name)
			}
			continue
		}
		setAlias(&d.Consoles[i].Alias, fmt.Sprintf("console%d", i))
	}
	for i := range d.Hubs {
		setAlias(&d.Hubs[i].Alias, fmt.Sprintf("hub%d", i))
	}
	for i := range d.Inputs {
		setAlias(&d.Inputs[i].Alias, fmt.Sprintf("input%d", i))
	}
	for i := range d.Sounds {
		setAlias(&d.Sounds[i].Alias, fmt.Sprintf("sound%d", i))
	}
	for i := range d.Videos {
		setAlias(&d.Videos[i].Alias, fmt.Sprintf("video%d", i))
	}
	for i := range d.Hostdevs {
		setAlias(&d.Hostdevs[i].Alias, fmt.Sprintf("hostdev%d", i))
	}
	for i := range d.RedirDevs {
		setAlias(&d.RedirDevs[i].Alias, fmt.Sprintf("redir%d", i))
	}
	for i := range d.Watchdogs {
		setAlias(&d.Watchdogs[i].Alias, fmt.Sprintf("watchdog%d", i))
	}
	if d.MemBalloon != nil {
		setAlias(&d.MemBalloon.Alias, "balloon0")
	}
	for i := range d.RNGs {
		setAlias(&d.RNGs[i].Alias, fmt.Sprintf("rng%d", i))
	}
	for i := range d.TPMs {
		setAlias(&d.TPMs[i].Alias, fmt.Sprintf("tpm%d", i))
	}
	for i := range d.Memorydevs {
		setAlias(&d.Memorydevs[i].Alias, fmt.Sprintf("dimm%d", i))
	}
	if d.VSock != nil {
		setAlias(&d.VSock.Alias, "vsock0")
	}
}

func setAlias(a **libvirtxml.DomainAlias, name string) {
	if *a != nil && (*a).Name != "" {
		return
	}
	*a = &libvirtxml.DomainAlias{Name: name}
}

func consoleIsSerial(c *libvirtxml.DomainConsole) bool {
	return c.Target == nil || c.Target.Type == "" || c.Target.Type == "serial"
}

// diskAlias follows qemuAssignDeviceDiskAlias: drive-addressed disks are
// named after bus/controller/bus/unit, virtio disks after their target
// name (vda -> virtio-disk0).
func diskAlias(disk *libvirtxml.DomainDisk, i int) string {
	bus := ""
	dev := ""
	if disk.Target != nil {
		bus, dev = disk.Target.Bus, disk.Target.Dev
	}
	if disk.Address != nil && disk.Address.Drive != nil {
		a := disk.Address.Drive
		switch bus {
		case "ide", "sata", "fdc":
			return fmt.Sprintf("%s%d-%d-%d", bus, uval(a.Controller), uval(a.Bus), uval(a.Unit))
		case "scsi":
			return fmt.Sprintf("scsi%d-%d-%d-%d", uval(a.Controller), uval(a.Bus), uval(a.Target), uval(a.Unit))
		}
	}
	idx := diskNameToIndex(dev)
	if idx < 0 {
		idx = i
	}
	switch bus {
	case "virtio":
		return fmt.Sprintf("virtio-disk%d", idx)
	case "usb":
		return fmt.Sprintf("usb-disk%d", idx)
	}
	return fmt.Sprintf("%s-disk%d", bus, idx)
}

// diskNameToIndex mirrors virDiskNameToIndex: vda -> 0, sdb -> 1,
// hdaa -> 26. It returns -1 for names it does not understand.
func diskNameToIndex(name string) int {
	for _, p := range []string{"fd", "hd", "vd", "sd", "xvd", "ubd"} {
		if strings.HasPrefix(name, p) {
			rest := name[len(p):]
			if rest == "" {
				return -1
			}
			idx := 0
			for _, c := range rest {
				if c < 'a' || c > 'z' {
					return -1
				}
				idx = (idx+1)*26 + int(c-'a')
			}
			return idx - 26
		}
	}
	return -1
}

// controllerAlias follows qemuAssignDeviceControllerAlias. The root bus
// and the controllers built into the machine type get the names QEMU
// gives them, because devices refer to their buses by those names.
func controllerAlias(c *libvirtxml.DomainController, q35 bool) string {
	idx := uint(0)
	if c.Index != nil {
		idx = *c.Index
	}
	switch c.Type {
	case "pci":
		if c.Model == "pcie-root" {
			return "pcie.0"
		}
		return fmt.Sprintf("pci.%d", idx)
	case "ide":
		if idx == 0 && !q35 {
			return "ide"
		}
	case "sata":
		if idx == 0 && q35 {
			return "ide"
		}
	case "usb":
		if idx == 0 {
			return "usb"
		}
	}
	return fmt.Sprintf("%s%d", c.Type, idx)
}

func uval(p *uint) uint {
	if p == nil {
		return 0
	}
	return *p
}

func isQ35(dom *libvirtxml.Domain) bool {
	if dom.OS == nil || dom.OS.Type == nil {
		return false
	}
	m := dom.OS.Type.Machine
	return m == "q35" || strings.HasPrefix(m, "pc-q35-")
}
