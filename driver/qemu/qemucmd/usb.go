package qemucmd

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// usbControllerDrivers maps libvirt's USB controller models to QEMU
// devices. The ICH9 UHCI companions have no id of their own: they attach
// to their EHCI master's bus.
var usbControllerDrivers = map[string]string{
	"piix3-uhci": "piix3-usb-uhci",
	"qemu-xhci":  "qemu-xhci",
	"nec-xhci":   "nec-usb-xhci",
	"ich9-ehci1": "ich9-usb-ehci1",
	"ich9-uhci1": "ich9-usb-uhci1",
	"ich9-uhci2": "ich9-usb-uhci2",
	"ich9-uhci3": "ich9-usb-uhci3",
}

// usbController follows qemuBuildUSBControllerDevProps.
func (b *builder) usbController(c *libvirtxml.DomainController, what string) error {
	if c.Model == "none" {
		return nil
	}
	driver, ok := usbControllerDrivers[c.Model]
	if !ok {
		return unsupported("%s: model '%s'", what, c.Model)
	}
	p := newProps().add("driver", driver)
	var ports *uint
	if c.USB != nil {
		ports = c.USB.Port
	}
	switch c.Model {
	case "qemu-xhci", "nec-xhci":
		if ports != nil {
			p.add("p2", *ports).add("p3", *ports)
		}
	default:
		if ports != nil {
			return unsupported("%s: ports", what)
		}
	}
	if c.USB != nil && c.USB.Master != nil {
		// A companion: its master is the USB bus of the same index.
		p.add("masterbus", fmt.Sprintf("%s.0", alias(c.Alias))).add("firstport", c.USB.Master.StartPort)
	} else {
		p.add("id", alias(c.Alias))
	}
	if err := b.addPCI(p, c.Address, what); err != nil {
		return err
	}
	b.device(p)
	return nil
}

// redirdevs: USB redirection over the SPICE connection
// (qemuBuildRedirdevCommandLine), each with its own spicevmc chardev.
func (b *builder) redirdevs() error {
	for i := range b.dom.Devices.RedirDevs {
		r := &b.dom.Devices.RedirDevs[i]
		id := alias(r.Alias)
		if r.Bus != "usb" || r.Source == nil || r.Source.SpiceVMC == nil || r.Boot != nil || r.Protocol != nil {
			return unsupported("redirdev '%s': only spicevmc USB redirection", id)
		}
		b.arg("-chardev", fmt.Sprintf("spicevmc,id=char%s,name=usbredir", id))
		p := newProps().add("driver", "usb-redir").add("chardev", "char"+id).add("id", id)
		if err := b.addUSB(p, r.Address, "redirdev '"+id+"'"); err != nil {
			return err
		}
		b.device(p)
	}
	return nil
}
