package qemu

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/qemucmd"
)

// nextNetAlias is qemuAssignDeviceNetAlias for a hot-plugged NIC: one
// past the highest netN in use, so a detached NIC's name is not reused
// while the domain runs.
func nextNetAlias(def *libvirtxml.Domain) string {
	next := 0
	for _, n := range def.Devices.Interfaces {
		if n.Alias == nil {
			continue
		}
		if k, err := strconv.Atoi(strings.TrimPrefix(n.Alias.Name, "net")); err == nil && strings.HasPrefix(n.Alias.Name, "net") && k >= next {
			next = k + 1
		}
	}
	return fmt.Sprintf("net%d", next)
}

// attachNetLive is qemuDomainAttachNetDevice for NICs of type user,
// network, bridge and ethernet: the tap (opened here and passed with
// getfd), netdev_add, device_add.
func (d *Driver) attachNetLive(ctx context.Context, dom *domain, live *libvirtxml.Domain, n *libvirtxml.DomainInterface) error {
	full, err := d.liveDevice(live, func(dv *libvirtxml.DomainDeviceList) { dv.Interfaces = append(dv.Interfaces, *n) })
	if err != nil {
		return err
	}
	added := full.Devices.Interfaces[len(full.Devices.Interfaces)-1]
	added.Alias = &libvirtxml.DomainAlias{Name: nextNetAlias(live)}
	id := added.Alias.Name
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	fdName := ""
	if added.Source != nil && (added.Source.Network != nil || added.Source.Bridge != nil || added.Source.Ethernet != nil) {
		// openTaps fills in <target dev> and the network's bridge.
		one := &libvirtxml.Domain{Devices: &libvirtxml.DomainDeviceList{Interfaces: []libvirtxml.DomainInterface{added}}}
		t, err := d.openTaps(ctx, one)
		if err != nil {
			return err
		}
		defer t.close() // QEMU keeps its own copy
		added = one.Devices.Interfaces[0]
		fdName = "tapfd-" + id
		if err := mon.GetFD(ctx, fdName, t[id]); err != nil {
			return errQMP(err)
		}
	}
	appendNet := func(def *libvirtxml.Domain) *libvirtxml.Domain {
		return withDevices(def, func(dv *libvirtxml.DomainDeviceList) { dv.Interfaces = append(dv.Interfaces, added) })
	}
	next := appendNet(live)
	h, err := qemucmd.HotplugNet(next, len(next.Devices.Interfaces)-1, fdName)
	if err != nil {
		if fdName != "" {
			mon.CloseFD(ctx, fdName)
		}
		return err
	}
	netdevs := 0
	undo := func() {
		if netdevs > 0 {
			if err := mon.NetdevDel(ctx, "host"+id); err != nil {
				d.log.Warn("cannot remove a netdev after a failed attach", "domain", dom.name, "netdev", "host"+id, "err", err)
			}
		} else if fdName != "" {
			mon.CloseFD(ctx, fdName)
		}
	}
	for _, b := range h.Backends {
		if err := mon.NetdevAdd(ctx, b); err != nil {
			undo()
			return errQMP(err)
		}
		netdevs++
	}
	if err := mon.DeviceAdd(ctx, h.Device); err != nil {
		undo()
		return errQMP(err)
	}
	return d.updateLive(dom, appendNet)
}

// findNet is virDomainNetFindIdx: the NIC matching match's MAC address
// and PCI address, where given.
func findNet(def *libvirtxml.Domain, match *libvirtxml.DomainInterface) (int, error) {
	var mac net.HardwareAddr
	if match.MAC != nil && match.MAC.Address != "" {
		m, err := net.ParseMAC(match.MAC.Address)
		if err != nil {
			return -1, compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "unable to parse mac address '%s'", match.MAC.Address)
		}
		mac = m
	}
	var pci *libvirtxml.DomainAddressPCI
	if match.Address != nil && match.Address.PCI != nil {
		pci = match.Address.PCI
	}
	found := -1
	for i, n := range def.Devices.Interfaces {
		if mac != nil {
			m, err := net.ParseMAC(macOf(&n))
			if err != nil || m.String() != mac.String() {
				continue
			}
		}
		if pci != nil && !samePCI(pci, n.Address) {
			continue
		}
		if found >= 0 {
			if mac != nil {
				return -1, compat.Errorf(libvirt.ErrOperationFailed, compat.FromDomain, "multiple devices matching MAC address %s found", mac)
			}
			return -1, compat.Errorf(libvirt.ErrOperationFailed, compat.FromDomain, "multiple matching devices found")
		}
		found = i
	}
	if found < 0 {
		switch {
		case mac != nil && pci != nil:
			return -1, compat.Errorf(libvirt.ErrDeviceMissing, compat.FromDomain, "no device matching MAC address %s found on %s", mac, pciString(pci))
		case mac != nil:
			return -1, compat.Errorf(libvirt.ErrDeviceMissing, compat.FromDomain, "no device matching MAC address %s found", mac)
		case pci != nil:
			return -1, compat.Errorf(libvirt.ErrDeviceMissing, compat.FromDomain, "no device found on %s", pciString(pci))
		}
		return -1, compat.Errorf(libvirt.ErrDeviceMissing, compat.FromDomain, "no matching device found")
	}
	return found, nil
}

func macOf(n *libvirtxml.DomainInterface) string {
	if n.MAC == nil {
		return ""
	}
	return n.MAC.Address
}

func samePCI(a *libvirtxml.DomainAddressPCI, b *libvirtxml.DomainAddress) bool {
	if b == nil || b.PCI == nil {
		return false
	}
	v := func(p *uint) uint {
		if p == nil {
			return 0
		}
		return *p
	}
	return v(a.Domain) == v(b.PCI.Domain) && v(a.Bus) == v(b.PCI.Bus) && v(a.Slot) == v(b.PCI.Slot) && v(a.Function) == v(b.PCI.Function)
}

func pciString(a *libvirtxml.DomainAddressPCI) string {
	v := func(p *uint) uint {
		if p == nil {
			return 0
		}
		return *p
	}
	return fmt.Sprintf("%04x:%02x:%02x.%d", v(a.Domain), v(a.Bus), v(a.Slot), v(a.Function))
}

// detachNetLive is qemuDomainDetachPrepNet and qemuDomainRemoveNetDevice:
// device_del, then, once the guest has let the NIC go, netdev_del (QEMU
// closes the tap, which the kernel then removes) and the live
// definition.
func (d *Driver) detachNetLive(ctx context.Context, dom *domain, live *libvirtxml.Domain, match *libvirtxml.DomainInterface) error {
	i, err := findNet(live, match)
	if err != nil {
		return err
	}
	n := &live.Devices.Interfaces[i]
	if n.Alias == nil || n.Alias.Name == "" {
		return compat.Errorf(libvirt.ErrOperationFailed, compat.FromQEMU, "device alias not found")
	}
	id := n.Alias.Name
	mon, err := dom.monitor()
	if err != nil {
		return err
	}
	finish := func(ctx context.Context) {
		if err := mon.NetdevDel(ctx, "host"+id); err != nil {
			d.log.Warn("cannot remove a detached NIC's netdev", "domain", dom.name, "netdev", "host"+id, "err", err)
		}
		err := d.updateLive(dom, func(cur *libvirtxml.Domain) *libvirtxml.Domain {
			return withDevices(cur, func(dv *libvirtxml.DomainDeviceList) {
				dv.Interfaces = slices.DeleteFunc(dv.Interfaces, func(k libvirtxml.DomainInterface) bool { return k.Alias != nil && k.Alias.Name == id })
			})
		})
		if err != nil {
			d.log.Warn("cannot record a NIC removal", "domain", dom.name, "interface", id, "err", err)
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
