package domainxml

import (
	"fmt"

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

// pending is a device still without a PCI address. A USB2 set is one
// entry (usbIdx >= 0) that takes a whole slot.
type pending struct {
	addr   **libvirtxml.DomainAddress
	what   string
	pcie   bool
	usbIdx int
}

// usb2Function is the PCI function of each member of an EHCI set with
// UHCI companions: libvirt puts the set in one slot, the EHCI master at
// function 7 and the companions at 0-2 (qemuDomainAssignDevicePCISlots).
var usb2Function = map[string]uint{"ich9-ehci1": 7, "ich9-uhci1": 0, "ich9-uhci2": 1, "ich9-uhci3": 2}

// pciePlaced says whether a device model may sit in a pcie-root-port on
// q35. Conventional PCI devices would need a pcie-to-pci-bridge, which
// govirtd does not create.
func pciePlaced(kind, model string) bool {
	switch kind {
	case "interface":
		return model == "virtio" || model == "e1000e"
	case "controller":
		return model == "qemu-xhci" || model == "nec-xhci" || model == "virtio-serial" || model == "sata" || model == "scsi"
	case "sound", "watchdog":
		return false
	case "video":
		return model == "virtio"
	}
	return true // virtio disks, balloon, rng
}

// assignPCIAddresses follows qemuDomainAssignPCIAddresses in libvirt 9.0's
// src/qemu/qemu_domain_address.c:
//   - fixed addresses first (qemuDomainValidateDevicePCISlotsPIIX3/Q35):
//     on i440fx the PIIX3 in slot 1 holds IDE (function 1) and the UHCI
//     USB controller (function 2) and the primary video takes slot 2; on
//     q35 the primary video takes slot 1, the first SATA controller
//     00:1f.2, the ICH9 USB2 set 00:1d and the ICH9 sound card 00:1b;
//   - then, in qemuDomainAssignDevicePCISlots' order: PCI controllers,
//     network interfaces, sound cards, other controllers (USB, SATA,
//     virtio-serial), virtio disks, the memballoon, RNGs, watchdogs and
//     further videos, each to the next free slot;
//   - on q35 such devices go behind pcie-root-ports: the definition's own
//     free ports first, then new ones, one per device plus one left empty
//     for hotplug; ports fill the functions of the first free slots.
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
		if *a == nil && !used[s] {
			*a = pciAddr(s)
			used[s] = true
		}
	}
	// usbSet places every member of the USB2 set with index idx in slot.
	usbSet := func(idx uint, slot uint) {
		for i := range dv.Controllers {
			c := &dv.Controllers[i]
			fn, ok := usb2Function[c.Model]
			if c.Type != "usb" || !ok || uval(c.Index) != idx || c.Address != nil {
				continue
			}
			c.Address = pciAddr(pciSlot{0, slot, fn})
			if fn == 0 {
				c.Address.PCI.MultiFunction = "on"
			}
			used[pciSlot{0, slot, fn}] = true
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
		if i := findController(dv, "usb", 0); i >= 0 {
			if _, ok := usb2Function[dv.Controllers[i].Model]; ok {
				usbSet(0, 0x1d)
			}
		}
		for i := range dv.Sounds {
			if dv.Sounds[i].Model == "ich9" {
				fixed(&dv.Sounds[i].Address, pciSlot{0, 0x1b, 0})
				break
			}
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

	var want []pending
	add := func(a **libvirtxml.DomainAddress, kind, model string) {
		if *a == nil {
			want = append(want, pending{addr: a, what: fmt.Sprintf("%s '%s'", kind, model), pcie: pciePlaced(kind, model), usbIdx: -1})
		}
	}
	for i := range dv.Interfaces {
		model := ""
		if dv.Interfaces[i].Model != nil {
			model = dv.Interfaces[i].Model.Type
		}
		add(&dv.Interfaces[i].Address, "interface", model)
	}
	for i := range dv.Sounds {
		add(&dv.Sounds[i].Address, "sound", dv.Sounds[i].Model)
	}
	for i := range dv.Controllers {
		c := &dv.Controllers[i]
		switch {
		case c.Type == "pci", c.Type == "ide", c.Type == "fdc", c.Type == "usb" && c.Model == "none":
			continue
		case c.Type == "usb":
			if _, ok := usb2Function[c.Model]; ok {
				if c.Address == nil {
					want = append(want, pending{what: "USB2 controller set", usbIdx: int(uval(c.Index))})
				}
				continue
			}
			add(&c.Address, "controller", c.Model)
		default:
			add(&c.Address, "controller", c.Type)
		}
	}
	for i := range dv.Disks {
		if dv.Disks[i].Target.Bus == "virtio" {
			add(&dv.Disks[i].Address, "disk", "virtio")
		}
	}
	if dv.MemBalloon != nil && dv.MemBalloon.Model == "virtio" {
		add(&dv.MemBalloon.Address, "memballoon", "virtio")
	}
	for i := range dv.RNGs {
		add(&dv.RNGs[i].Address, "rng", "virtio")
	}
	for i := range dv.Watchdogs {
		if dv.Watchdogs[i].Model == "i6300esb" {
			add(&dv.Watchdogs[i].Address, "watchdog", "i6300esb")
		}
	}
	for i := 1; i < len(dv.Videos); i++ {
		if dv.Videos[i].Model.Type != "none" {
			add(&dv.Videos[i].Address, "video", dv.Videos[i].Model.Type)
		}
	}

	if !q35 {
		for _, p := range want {
			s := nextSlot()
			if s == 0 {
				return unsupported("no free PCI slot left on bus 0 (govirtd does not add pci-bridge controllers)")
			}
			if p.usbIdx >= 0 {
				usbSet(uint(p.usbIdx), s)
				continue
			}
			*p.addr = pciAddr(pciSlot{0, s, 0})
			used[pciSlot{0, s, 0}] = true
		}
		return nil
	}
	return assignRootPorts(dv, want, used, nextSlot)
}

// assignRootPorts addresses the definition's pcie-root-ports, then puts
// each device behind a free one, adding ports when they run out.
func assignRootPorts(dv *libvirtxml.DomainDeviceList, devs []pending, used map[pciSlot]bool, nextSlot func() uint) error {
	for _, p := range devs {
		if p.usbIdx >= 0 || !p.pcie {
			return unsupported("%s on a q35 machine needs a pcie-to-pci-bridge, which govirtd does not add", p.what)
		}
	}
	// Place ports in consecutive functions of free slots; fn 0 of a slot
	// with several ports is multifunction.
	slot, fn := uint(0), uint(0)
	var inSlot []*libvirtxml.DomainController
	flush := func() {
		if len(inSlot) > 1 {
			inSlot[0].Address.PCI.MultiFunction = "on"
		}
		inSlot = nil
	}
	place := func(c *libvirtxml.DomainController) error {
		if slot == 0 || fn == 8 {
			flush()
			slot, fn = nextSlot(), 0
			if slot == 0 {
				return unsupported("no free PCI slot left on bus 0 for pcie-root-port controllers")
			}
		}
		c.Address = pciAddr(pciSlot{0, slot, fn})
		used[pciSlot{0, slot, fn}] = true
		idx := uval(c.Index)
		if c.PCI == nil {
			c.PCI = &libvirtxml.DomainControllerPCI{}
		}
		if c.PCI.Model == nil {
			c.PCI.Model = &libvirtxml.DomainControllerPCIModel{Name: "pcie-root-port"}
		}
		if c.PCI.Target == nil {
			c.PCI.Target = &libvirtxml.DomainControllerPCITarget{}
		}
		if c.PCI.Target.Chassis == nil {
			c.PCI.Target.Chassis = uintp(idx)
		}
		if c.PCI.Target.Port == nil {
			c.PCI.Target.Port = uintp(slot<<3 | fn)
		}
		inSlot = append(inSlot, c)
		fn++
		return nil
	}
	var maxIdx uint
	for i := range dv.Controllers {
		c := &dv.Controllers[i]
		if c.Type != "pci" {
			continue
		}
		maxIdx = max(maxIdx, uval(c.Index))
		if c.Model == "pcie-root-port" && c.Address == nil {
			if err := place(c); err != nil {
				return err
			}
		}
	}
	busy := map[uint]bool{}
	forEachPCIAddress(dv, func(a *libvirtxml.DomainAddress) {
		if a != nil && a.PCI != nil && a.PCI.Bus != nil {
			busy[*a.PCI.Bus] = true
		}
	})
	var free []uint
	for _, c := range dv.Controllers {
		if c.Type == "pci" && c.Model == "pcie-root-port" && !busy[uval(c.Index)] {
			free = append(free, uval(c.Index))
		}
	}
	i := 0
	for ; i < len(devs) && i < len(free); i++ {
		*devs[i].addr = pciAddr(pciSlot{free[i], 0, 0})
	}
	if i == len(devs) {
		flush()
		return nil
	}
	// New ports: one per remaining device and one for hotplug. They are
	// collected first and inserted at the end: inserting grows
	// dv.Controllers and would invalidate the device pointers.
	rest := devs[i:]
	ports := make([]libvirtxml.DomainController, len(rest)+1)
	flush()
	slot = 0
	for j := range ports {
		ports[j] = libvirtxml.DomainController{Type: "pci", Index: uintp(maxIdx + 1 + uint(j)), Model: "pcie-root-port"}
		if err := place(&ports[j]); err != nil {
			return err
		}
		if j < len(rest) {
			*rest[j].addr = pciAddr(pciSlot{maxIdx + 1 + uint(j), 0, 0})
		}
	}
	flush()
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
	for _, s := range dv.Sounds {
		f(s.Address)
	}
	for _, r := range dv.RNGs {
		f(r.Address)
	}
	for _, w := range dv.Watchdogs {
		f(w.Address)
	}
}

func uval(p *uint) uint {
	if p == nil {
		return 0
	}
	return *p
}
