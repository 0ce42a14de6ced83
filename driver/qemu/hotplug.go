package qemu

import (
	"context"
	"slices"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/xmlwf"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
)

// deviceXML is a parsed <disk> or <interface> of virDomainAttachDevice
// and friends (the kinds govirtd plugs).
type deviceXML struct {
	kind string // root element name
	disk *libvirtxml.DomainDisk
	net  *libvirtxml.DomainInterface
}

// parseDeviceXML reads one device element.
func parseDeviceXML(text string) (deviceXML, error) {
	root, err := xmlwf.Check(text, "(device_definition)", compat.FromDomain)
	if err != nil {
		return deviceXML{}, err
	}
	dx := deviceXML{kind: root}
	switch root {
	case "disk":
		dx.disk = &libvirtxml.DomainDisk{}
		err = dx.disk.Unmarshal(text)
	case "interface":
		dx.net = &libvirtxml.DomainInterface{}
		err = dx.net.Unmarshal(text)
	}
	if err != nil {
		return deviceXML{}, compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "(device_definition): %v", err)
	}
	return dx, nil
}

// withDevices is a copy of def whose device lists change can edit: the
// disk and interface slices are copies, everything else is shared
// (definitions are never modified in place).
func withDevices(def *libvirtxml.Domain, change func(dv *libvirtxml.DomainDeviceList)) *libvirtxml.Domain {
	c := *def
	dv := libvirtxml.DomainDeviceList{}
	if def.Devices != nil {
		dv = *def.Devices
	}
	dv.Disks = slices.Clone(dv.Disks)
	dv.Interfaces = slices.Clone(dv.Interfaces)
	change(&dv)
	c.Devices = &dv
	return &c
}

// withDefaults is def (inactive form) with a device added and libvirt's
// define-time defaults applied to it: addresses, MAC address, model,
// disk order. The whole definition goes through the same parse as
// DefineXML, so the device is what it would be had it been defined with
// the domain.
func (d *Driver) withDefaults(def *libvirtxml.Domain, add func(dv *libvirtxml.DomainDeviceList)) (*libvirtxml.Domain, error) {
	text, err := domainxml.Format(withDevices(def, add), domainxml.FormatOptions{Inactive: true, Secure: true})
	if err != nil {
		return nil, err
	}
	out, _, err := d.parseDefinition(text)
	return out, err
}

// updateLive installs change(live) as the running domain's definition and
// records it in the status file. change runs under dom.mu: it must only
// copy.
func (d *Driver) updateLive(dom *domain, change func(live *libvirtxml.Domain) *libvirtxml.Domain) error {
	dom.mu.Lock()
	if dom.live == nil {
		dom.mu.Unlock()
		return errNotRunning()
	}
	dom.live = change(dom.live)
	dom.mu.Unlock()
	return d.saveStatus(dom)
}

func errLiveAttach(kind string) error {
	return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "live attach of device '%s' is not supported", kind)
}

func errLiveDetach(kind string) error {
	return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "live detach of device '%s' is not supported", kind)
}

// AttachDevice implements driver.DomainDevices as libvirt's
// qemuDomainAttachDeviceLiveAndConfig: the persistent definition's copy
// is prepared first (so its errors come first), then the running QEMU is
// changed, then the new persistent definition is saved.
func (d *Driver) AttachDevice(ctx context.Context, ref libvirt.Domain, text string, flags uint32) error {
	if flags&^(affectLive|affectConfig) != 0 {
		return errUnsupportedFlagsIn(flags, "qemuDomainAttachDeviceFlags")
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainAttachDeviceFlags", func() error {
		dom.mu.Lock()
		flags, err := modificationImpact(dom, flags)
		live, config := dom.live, dom.def
		dom.mu.Unlock()
		if err != nil {
			return err
		}
		dx, err := parseDeviceXML(text)
		if err != nil {
			return err
		}
		if dx.net != nil && (dx.net.MAC == nil || dx.net.MAC.Address == "") {
			// Parsed once, as libvirt does: the live and the persistent
			// NIC have the same generated address.
			dx.net.MAC = &libvirtxml.DomainInterfaceMAC{Address: domainxml.RandomMAC()}
		}
		var newConfig *libvirtxml.Domain
		if flags&affectConfig != 0 {
			if newConfig, err = d.attachConfig(config, dx); err != nil {
				return err
			}
		}
		if flags&affectLive != 0 {
			switch dx.kind {
			case "disk":
				err = d.attachDiskLive(ctx, dom, live, dx.disk)
			case "interface":
				err = d.attachNetLive(ctx, dom, live, dx.net)
			default:
				err = errLiveAttach(dx.kind)
			}
			if err != nil {
				return err
			}
		}
		if newConfig != nil {
			return d.saveConfig(dom, config, newConfig)
		}
		return nil
	})
}

// attachConfig is qemuDomainAttachDeviceConfig on a copy of config.
func (d *Driver) attachConfig(config *libvirtxml.Domain, dx deviceXML) (*libvirtxml.Domain, error) {
	switch dx.kind {
	case "disk":
		if findTarget(config, diskTarget(dx.disk)) >= 0 {
			return nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "target %s already exists", diskTarget(dx.disk))
		}
		return d.withDefaults(config, func(dv *libvirtxml.DomainDeviceList) { dv.Disks = append(dv.Disks, *dx.disk) })
	case "interface":
		return d.withDefaults(config, func(dv *libvirtxml.DomainDeviceList) { dv.Interfaces = append(dv.Interfaces, *dx.net) })
	}
	return nil, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "persistent attach of device '%s' is not supported", dx.kind)
}

// DetachDevice implements driver.DomainDevices as libvirt's
// qemuDomainDetachDeviceLiveAndConfig.
func (d *Driver) DetachDevice(ctx context.Context, ref libvirt.Domain, text string, flags uint32) error {
	if flags&^(affectLive|affectConfig) != 0 {
		return errUnsupportedFlagsIn(flags, "qemuDomainDetachDeviceLiveAndConfig")
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainDetachDeviceFlags", func() error {
		dom.mu.Lock()
		flags, err := modificationImpact(dom, flags)
		live, config := dom.live, dom.def
		dom.mu.Unlock()
		if err != nil {
			return err
		}
		dx, err := parseDeviceXML(text)
		if err != nil {
			return err
		}
		var newConfig *libvirtxml.Domain
		if flags&affectConfig != 0 {
			if newConfig, err = detachConfig(config, dx); err != nil {
				return err
			}
		}
		if flags&affectLive != 0 {
			switch dx.kind {
			case "disk":
				err = d.detachDiskLive(ctx, dom, live, dx.disk)
			case "interface":
				err = d.detachNetLive(ctx, dom, live, dx.net)
			default:
				err = errLiveDetach(dx.kind)
			}
			if err != nil {
				return err
			}
		}
		if newConfig != nil {
			return d.saveConfig(dom, config, newConfig)
		}
		return nil
	})
}

// detachConfig is qemuDomainDetachDeviceConfig on a copy of config.
func detachConfig(config *libvirtxml.Domain, dx deviceXML) (*libvirtxml.Domain, error) {
	switch dx.kind {
	case "disk":
		i := findTarget(config, diskTarget(dx.disk))
		if i < 0 {
			return nil, compat.Errorf(libvirt.ErrDeviceMissing, compat.FromQEMU, "no target device %s", diskTarget(dx.disk))
		}
		return withDevices(config, func(dv *libvirtxml.DomainDeviceList) { dv.Disks = slices.Delete(dv.Disks, i, i+1) }), nil
	case "interface":
		i, err := findNet(config, dx.net)
		if err != nil {
			return nil, err
		}
		return withDevices(config, func(dv *libvirtxml.DomainDeviceList) { dv.Interfaces = slices.Delete(dv.Interfaces, i, i+1) }), nil
	}
	return nil, compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "persistent detach of device '%s' is not supported", dx.kind)
}

// UpdateDevice implements driver.DomainDevices as
// qemuDomainUpdateDeviceLiveAndConfig for what govirtd can change in
// place: the medium of a CD-ROM or floppy (virsh change-media). Other
// devices are refused in libvirt's words for a device it cannot update.
func (d *Driver) UpdateDevice(ctx context.Context, ref libvirt.Domain, text string, flags uint32) error {
	force := uint32(libvirt.DomainDeviceModifyForce)
	if flags&^(affectLive|affectConfig|force) != 0 {
		return errUnsupportedFlagsIn(flags, "qemuDomainUpdateDeviceFlags")
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainUpdateDeviceFlags", func() error {
		dom.mu.Lock()
		impact, err := modificationImpact(dom, flags&^force)
		live, config := dom.live, dom.def
		dom.mu.Unlock()
		if err != nil {
			return err
		}
		dx, err := parseDeviceXML(text)
		if err != nil {
			return err
		}
		if dx.kind != "disk" {
			if impact&affectConfig != 0 {
				return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "persistent update of device '%s' is not supported", dx.kind)
			}
			return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "live update of device '%s' is not supported", dx.kind)
		}
		var newConfig *libvirtxml.Domain
		if impact&affectConfig != 0 {
			if newConfig, err = updateMediaConfig(config, dx.disk); err != nil {
				return err
			}
		}
		if impact&affectLive != 0 {
			if err := d.changeMediaLive(ctx, dom, live, dx.disk, flags&force != 0); err != nil {
				return err
			}
		}
		if newConfig != nil {
			return d.saveConfig(dom, config, newConfig)
		}
		return nil
	})
}
