package domainxml

import (
	"libvirt.org/go/libvirtxml"
)

// pciSlot identifies a function on bus 0 or a device behind a root port.
type pciSlot struct{ bus, slot, fn uint }

func pciAddr(s pciSlot) *libvirtxml.DomainAddress {
	return &libvirtxml.DomainAddress{PCI: &libvirtxml.DomainAddressPCI{
		Domain: uintp(0), Bus: uintp(s.bus), Slot: uintp(s.slot), Function: uintp(s.fn),
	}}
}

// pciDevice is a device that wants a PCI address, in libvirt's assignment
// order.
type pciDevice struct {
	addr **libvirtxml.DomainAddress
}

// assignPCIAddresses follows qemuDomainAssignPCIAddresses in libvirt 9.0's
// src/qemu/qemu_domain_address.c:
//   - fixed addresses first (qemuDomainValidateDevicePCISlotsPIIX3/Q35):
//     on i440fx the PIIX3 in slot 1 holds IDE (function 1) and the UHCI
//     USB controller (function 2) and the primary video takes slot 2; on
//     q35 the primary video takes slot 1 and the first SATA controller
//     00:1f.2;
//   - then, in qemuDomainAssignDevicePCISlots' order: network interfaces,
//     controllers (USB, SATA, virtio-serial), virtio disks, the
//     memballoon and further videos, each to the next free slot;
//   - on q35 every such PCI Express device goes behind its own
//     pcie-root-port, and one more empty port is added for hotplug; the
//     ports fill the functions of the first free slots on bus 0.
func assignPCIAddresses(dv *libvirtxml.DomainDeviceList, q35 bool) error {
	used := map[pciSlot]bool{}
	mark := func(a *libvirtxml.DomainAddress) {
		if a != nil && a.PCI != nil && a.PCI.Bus != nil && a.PCI.Slot != nil {
			fn := uint(0)
			if a.PCI.Function != nil {
				fn = *a.PCI.Function
			}
			used[pciSlot{*a.PCI.Bus, *a.PCI.Slot, fn}] = true
		}
	}
	forEachPCIAddress(dv, mark)
	fixed := func(a **libvirtxml.DomainAddress, s pciSlot) {
		if *a == nil {
			*a = pciAddr(s)
			used[s] = true
		}
	}

	var video *libvirtxml.DomainVideo
	if len(dv.Videos) > 0 && dv.Videos[0].Model.Type != "none" {
		video = &dv.Videos[0]
	}
	if q35 {
		if video != nil {
			fixed(&video.Address, pciSlot{0, 1, 0})
		}
		if i := findController(dv, "sata", 0); i >= 0 {
			fixed(&dv.Controllers[i].Address, pciSlot{0, 0x1f, 2})
		}
	} else {
		used[pciSlot{0, 1, 0}] = true // the PIIX3 ISA bridge
		if i := findController(dv, "ide", 0); i >= 0 {
			fixed(&dv.Controllers[i].Address, pciSlot{0, 1, 1})
		}
		if i := findController(dv, "usb", 0); i >= 0 && dv.Controllers[i].Model == "piix3-uhci" {
			fixed(&dv.Controllers[i].Address, pciSlot{0, 1, 2})
		}
		if video != nil {
			fixed(&video.Address, pciSlot{0, 2, 0})
		}
	}

	var want []pciDevice
	for i := range dv.Interfaces {
		want = append(want, pciDevice{&dv.Interfaces[i].Address})
	}
	for i := range dv.Controllers {
		c := &dv.Controllers[i]
		switch {
		case c.Type == "pci", c.Type == "ide", c.Type == "usb" && c.Model == "none":
			continue
		}
		want = append(want, pciDevice{&c.Address})
	}
	for i := range dv.Disks {
		if dv.Disks[i].Target.Bus == "virtio" {
			want = append(want, pciDevice{&dv.Disks[i].Address})
		}
	}
	if dv.MemBalloon != nil && dv.MemBalloon.Model == "virtio" {
		want = append(want, pciDevice{&dv.MemBalloon.Address})
	}
	for i := 1; i < len(dv.Videos); i++ {
		if dv.Videos[i].Model.Type != "none" {
			want = append(want, pciDevice{&dv.Videos[i].Address})
		}
	}
	var pending []pciDevice
	for _, w := range want {
		if *w.addr == nil {
			pending = append(pending, w)
		}
	}

	nextSlot := func() uint {
		for s := uint(1); s < 32; s++ {
			free := true
			for fn := uint(0); fn < 8; fn++ {
				if used[pciSlot{0, s, fn}] {
					free = false
					break
				}
			}
			if free {
				return s
			}
		}
		return 0
	}
	if !q35 {
		for _, p := range pending {
			s := nextSlot()
			if s == 0 {
				return unsupported("no free PCI slot left on bus 0 (govirtd does not add pci-bridge controllers)")
			}
			*p.addr = pciAddr(pciSlot{0, s, 0})
			used[pciSlot{0, s, 0}] = true
		}
		return nil
	}

	if len(pending) == 0 {
		return nil
	}
	// q35: one root port per pending device plus one for hotplug.
	nPorts := len(pending) + 1
	var maxIdx uint
	for _, c := range dv.Controllers {
		if c.Type == "pci" && c.Index != nil {
			maxIdx = max(maxIdx, *c.Index)
		}
	}
	// The ports are collected first and inserted at the end: inserting
	// grows dv.Controllers and would invalidate the pending pointers.
	var ports []libvirtxml.DomainController
	slot := nextSlot()
	fn := uint(0)
	for i := 0; i < nPorts; i++ {
		if slot == 0 {
			return unsupported("no free PCI slot left on bus 0 for pcie-root-port controllers")
		}
		idx := maxIdx + 1 + uint(i)
		a := pciAddr(pciSlot{0, slot, fn})
		used[pciSlot{0, slot, fn}] = true
		ports = append(ports, libvirtxml.DomainController{
			Type: "pci", Index: uintp(idx), Model: "pcie-root-port",
			PCI: &libvirtxml.DomainControllerPCI{
				Model:  &libvirtxml.DomainControllerPCIModel{Name: "pcie-root-port"},
				Target: &libvirtxml.DomainControllerPCITarget{Chassis: uintp(idx), Port: uintp(slot<<3 | fn)},
			},
			Address: a,
		})
		if i < len(pending) {
			*pending[i].addr = pciAddr(pciSlot{idx, 0, 0})
		}
		fn++
		if fn == 8 || i == nPorts-1 {
			if fn > 1 {
				ports[len(ports)-int(fn)].Address.PCI.MultiFunction = "on"
			}
			fn = 0
			slot = nextSlot()
		}
	}
	for _, p := range ports {
		insertController(dv, p)
	}
	return nil
}

// forEachPCIAddress visits the address of every device kind govirtd
// supports.
func forEachPCIAddress(dv *libvirtxml.DomainDeviceList, f func(*libvirtxml.DomainAddress)) {
	for _, d := range dv.Disks {
		f(d.Address)
	}
	for _, c := range dv.Controllers {
		f(c.Address)
	}
	for _, n := range dv.Interfaces {
		f(n.Address)
	}
	for _, v := range dv.Videos {
		f(v.Address)
	}
	if dv.MemBalloon != nil {
		f(dv.MemBalloon.Address)
	}
}
