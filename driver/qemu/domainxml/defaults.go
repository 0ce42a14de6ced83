package domainxml

import (
	"crypto/rand"
	"fmt"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

func archOf(d *libvirtxml.Domain) string {
	if d.OS != nil && d.OS.Type != nil && d.OS.Type.Arch != "" {
		return d.OS.Type.Arch
	}
	return "x86_64"
}

// machineOf is the canonical machine the domain will use.
func machineOf(d *libvirtxml.Domain, host Host) string {
	arch := archOf(d)
	if d.OS != nil && d.OS.Type != nil && d.OS.Type.Machine != "" {
		if m, ok := host.CanonicalMachine(arch, d.OS.Type.Machine); ok {
			return m
		}
		return d.OS.Type.Machine
	}
	return host.DefaultMachine(arch)
}

func isQ35(machine string) bool {
	return machine == "q35" || strings.HasPrefix(machine, "pc-q35-")
}

func uintp(v uint) *uint { return &v }

// memoryKiB scales a <memory>-style value to KiB like virScaleInteger;
// libvirt always stores and prints KiB.
func memoryKiB(v uint, unit string) (uint, error) {
	mult := map[string]uint64{
		"": 1024, "k": 1024, "KiB": 1024, "KB": 1000, "b": 1, "bytes": 1,
		"M": 1 << 20, "MiB": 1 << 20, "MB": 1e6,
		"G": 1 << 30, "GiB": 1 << 30, "GB": 1e9,
		"T": 1 << 40, "TiB": 1 << 40, "TB": 1e12,
	}[unit]
	if mult == 0 {
		return 0, compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "unknown suffix '%s'", unit)
	}
	bytes := uint64(v) * mult
	return uint((bytes + 1023) / 1024), nil
}

// ApplyDefaults fills in what libvirt 9.0 adds when a domain is defined
// (parse defaults in src/conf/domain_conf.c, virDomainDefPostParse in
// src/conf/domain_postparse.c, qemuDomainDefPostParse and the device
// post-parse callbacks in src/qemu/qemu_domain.c, and PCI/drive address
// assignment in src/qemu/qemu_domain_address.c). Run Validate first.
func ApplyDefaults(d *libvirtxml.Domain, host Host) error {
	if d.UUID == "" {
		d.UUID = randomUUID()
	}
	// Memory: stored in KiB; currentMemory defaults to (and is capped at)
	// memory (virDomainDefPostParseMemory).
	kib, err := memoryKiB(d.Memory.Value, d.Memory.Unit)
	if err != nil {
		return err
	}
	d.Memory.Value, d.Memory.Unit = kib, "KiB"
	if d.CurrentMemory == nil {
		d.CurrentMemory = &libvirtxml.DomainCurrentMemory{Value: kib}
	} else if cur, err := memoryKiB(d.CurrentMemory.Value, d.CurrentMemory.Unit); err != nil {
		return err
	} else {
		d.CurrentMemory.Value = min(cur, kib)
	}
	d.CurrentMemory.Unit = "KiB"

	if d.VCPU == nil {
		d.VCPU = &libvirtxml.DomainVCPU{Value: 1}
	}
	d.VCPU.Placement = "static"
	if d.VCPU.Current == d.VCPU.Value {
		d.VCPU.Current = 0 // libvirt prints current only when it differs
	}

	if d.OS == nil {
		d.OS = &libvirtxml.DomainOS{}
	}
	if d.OS.Type == nil {
		d.OS.Type = &libvirtxml.DomainOSType{Type: "hvm"}
	}
	d.OS.Type.Arch = archOf(d)
	machine := machineOf(d, host)
	if machine == "" {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "no machine type known for arch '%s'", d.OS.Type.Arch)
	}
	d.OS.Type.Machine = machine
	q35 := isQ35(machine)

	if d.Devices == nil {
		d.Devices = &libvirtxml.DomainDeviceList{}
	}
	dv := d.Devices
	// virDomainDefParseBootOptions: <boot dev='hd'/> unless a device has
	// its own boot order.
	if len(d.OS.BootDevices) == 0 && !hasDeviceBoot(dv) {
		d.OS.BootDevices = []libvirtxml.DomainBootDevice{{Dev: "hd"}}
	}

	applyCPUDefaults(d)
	if d.Clock == nil {
		d.Clock = &libvirtxml.DomainClock{}
	}
	if d.Clock.Offset == "" {
		d.Clock.Offset = "utc"
	}
	if d.OnPoweroff == "" {
		d.OnPoweroff = "destroy"
	}
	if d.OnReboot == "" {
		d.OnReboot = "restart"
	}
	if d.OnCrash == "" {
		d.OnCrash = "destroy"
	}
	if dv.Emulator == "" {
		dv.Emulator = host.Emulator(d.OS.Type.Arch)
	}

	// Generic implicit devices come first (virDomainDefAddImplicitDevices
	// runs before the QEMU callback, see domain_postparse.c): disk
	// controllers, the console/serial pairing and the video for graphics.
	assignControllerIndices(dv)
	applyDiskDefaults(dv)
	sortDisks(dv)
	applyChardevDefaults(dv)
	if len(dv.Graphics) > 0 && len(dv.Videos) == 0 {
		// qemuDomainDeviceVideoDefPostParse: cirrus is libvirt 9.0's
		// default video model for x86 i440fx/q35 guests.
		dv.Videos = []libvirtxml.DomainVideo{{Model: libvirtxml.DomainVideoModel{Type: "cirrus"}}}
	}
	applyVideoDefaults(dv)
	applyGraphicsDefaults(dv)

	// qemuDomainDefAddDefaultDevices: USB controller, SATA on q35, the PCI
	// root, implicit PS/2 inputs, the default memballoon and audio.
	if findController(dv, "usb", 0) < 0 {
		model := "piix3-uhci"
		if q35 {
			model = "qemu-xhci"
		}
		insertController(dv, libvirtxml.DomainController{Type: "usb", Index: uintp(0), Model: model})
	}
	for i := range dv.Controllers {
		if c := &dv.Controllers[i]; c.Type == "usb" && c.Model == "" {
			c.Model = "piix3-uhci"
			if q35 {
				c.Model = "qemu-xhci"
			}
		}
	}
	if q35 && findController(dv, "sata", 0) < 0 {
		insertController(dv, libvirtxml.DomainController{Type: "sata", Index: uintp(0)})
	}
	if findController(dv, "pci", 0) < 0 {
		model := "pci-root"
		if q35 {
			model = "pcie-root"
		}
		insertController(dv, libvirtxml.DomainController{Type: "pci", Index: uintp(0), Model: model})
	}
	// virDomainDefAddImplicitControllers runs after the QEMU callback:
	// disk controllers by type (fdc, ide, sata), then virtio-serial.
	addImplicitDiskControllers(dv)
	applyOtherDeviceDefaults(dv)
	addInput(dv, "mouse", "ps2")
	addInput(dv, "keyboard", "ps2")
	for i := range dv.Inputs {
		if dv.Inputs[i].Bus == "" {
			dv.Inputs[i].Bus = "ps2"
			if dv.Inputs[i].Type == "tablet" {
				dv.Inputs[i].Bus = "usb"
			}
		}
	}
	if len(dv.Audios) == 0 {
		// qemuDomainDefAddDefaultAudioBackend with qemu.conf defaults
		// (vnc_allow_host_audio = nogfx_allow_host_audio = 0).
		// A SPICE display carries the guest's sound itself.
		if hasSpice(dv) {
			dv.Audios = []libvirtxml.DomainAudio{{ID: 1, SPICE: &libvirtxml.DomainAudioSPICE{}}}
		} else {
			dv.Audios = []libvirtxml.DomainAudio{{ID: 1, None: &libvirtxml.DomainAudioNone{}}}
		}
	}
	if dv.MemBalloon == nil {
		dv.MemBalloon = &libvirtxml.DomainMemBalloon{Model: "virtio"}
	}
	for i := range dv.Interfaces {
		n := &dv.Interfaces[i]
		if n.MAC == nil || n.MAC.Address == "" {
			n.MAC = &libvirtxml.DomainInterfaceMAC{Address: randomMAC()}
		}
		if n.Model == nil || n.Model.Type == "" {
			// qemuDomainDefaultNetModel: rtl8139 for x86 in 9.0.
			n.Model = &libvirtxml.DomainInterfaceModel{Type: "rtl8139"}
		}
	}
	assignUSBAddresses(dv)
	return assignPCIAddresses(dv, q35)
}

func hasDeviceBoot(dv *libvirtxml.DomainDeviceList) bool {
	for _, d := range dv.Disks {
		if d.Boot != nil {
			return true
		}
	}
	for _, n := range dv.Interfaces {
		if n.Boot != nil {
			return true
		}
	}
	return false
}

// applyCPUDefaults follows qemuDomainDefSetDefaultCPU (x86 machines report
// default CPU qemu64, for TCG and KVM alike) and qemuDomainDefCPUPostParse
// (check='none' for TCG custom CPUs and host-passthrough/maximum,
// 'partial' otherwise), plus virCPUDefParseXML's match='exact' and
// fallback='allow' for user-given models.
func applyCPUDefaults(d *libvirtxml.Domain) {
	if d.CPU == nil || (d.CPU.Mode == "" || d.CPU.Mode == "custom") && d.CPU.Model == nil {
		if d.CPU == nil {
			d.CPU = &libvirtxml.DomainCPU{}
		}
		d.CPU.Mode, d.CPU.Match = "custom", "exact"
		d.CPU.Model = &libvirtxml.DomainCPUModel{Fallback: "forbid", Value: "qemu64"}
		if d.CPU.Check == "" {
			d.CPU.Check = "none"
		}
		return
	}
	c := d.CPU
	if c.Mode == "" {
		c.Mode = "custom"
	}
	switch c.Mode {
	case "custom":
		if c.Match == "" {
			c.Match = "exact"
		}
		if c.Model != nil && c.Model.Fallback == "" {
			c.Model.Fallback = "allow"
		}
		if c.Check == "" {
			c.Check = "partial"
			if d.Type == "qemu" {
				c.Check = "none"
			}
		}
	case "host-passthrough", "maximum":
		if c.Check == "" {
			c.Check = "none"
		}
		if c.Migratable == "" {
			c.Migratable = "on"
		}
	case "host-model":
		if c.Check == "" {
			c.Check = "partial"
		}
	}
}

func applyDiskDefaults(dv *libvirtxml.DomainDeviceList) {
	for i := range dv.Disks {
		disk := &dv.Disks[i]
		if disk.Device == "" {
			disk.Device = "disk"
		}
		disk.Target.Bus = diskBus(disk)
		// qemuDomainDeviceDiskDefPostParse: driver name qemu, format raw.
		if disk.Driver == nil {
			disk.Driver = &libvirtxml.DomainDiskDriver{}
		}
		if disk.Driver.Name == "" {
			disk.Driver.Name = "qemu"
		}
		if disk.Driver.Type == "" {
			disk.Driver.Type = "raw"
		}
		// An empty drive is a file disk without a path, whatever type
		// it was given.
		if src := disk.Source; src != nil && src.Block != nil && src.Block.Dev == "" {
			disk.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{}}
		}
		// A cdrom is always read-only (virDomainDiskDefParseXML).
		if disk.Device == "cdrom" && disk.ReadOnly == nil {
			disk.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
		}
		if disk.Address == nil && disk.Target.Bus != "virtio" {
			disk.Address = driveAddress(disk.Target.Bus, disk.Target.Dev)
		}
		if a := disk.Address; a != nil && a.Drive != nil {
			// Attributes left out are 0, and libvirt writes all four.
			for _, f := range []**uint{&a.Drive.Controller, &a.Drive.Bus, &a.Drive.Target, &a.Drive.Unit} {
				if *f == nil {
					*f = uintp(0)
				}
			}
		}
	}
}

// sortDisks orders disks as virDomainDiskInsert does while parsing: a
// disk goes after the last disk of its bus with a lower drive index,
// before one with a higher index, and disks of different buses keep their
// order.
func sortDisks(dv *libvirtxml.DomainDeviceList) {
	in := dv.Disks
	out := make([]libvirtxml.DomainDisk, 0, len(in))
	for _, d := range in {
		at := len(out)
		for i := len(out) - 1; i >= 0; i-- {
			cur := out[i]
			if cur.Target.Bus != d.Target.Bus {
				continue
			}
			if driveIndex(cur.Target.Dev) > driveIndex(d.Target.Dev) {
				at = i
			} else {
				at = i + 1
				break
			}
		}
		out = append(out, libvirtxml.DomainDisk{})
		copy(out[at+1:], out[at:])
		out[at] = d
	}
	dv.Disks = out
}

// driveIndex is virDiskNameToIndex: "hda" -> 0, "sdb" -> 1, "vdaa" -> 26.
func driveIndex(dev string) uint {
	name := dev
	for _, prefix := range []string{"fd", "hd", "vd", "sd", "xvd", "ubd"} {
		if strings.HasPrefix(dev, prefix) {
			name = dev[len(prefix):]
			break
		}
	}
	idx := 0
	for _, c := range name {
		if c < 'a' || c > 'z' {
			break
		}
		idx = idx*26 + int(c-'a') + 1
		if idx > 1<<20 {
			// Far past any controller; stop before int overflows.
			break
		}
	}
	return uint(max(idx-1, 0))
}

// driveAddress is virDomainDiskDefAssignAddress: IDE has two buses of two
// units, libvirt's SATA (AHCI) controllers have six ports on bus 0.
func driveAddress(bus, dev string) *libvirtxml.DomainAddress {
	idx := driveIndex(dev)
	a := &libvirtxml.DomainAddressDrive{Target: uintp(0)}
	switch bus {
	case "ide":
		a.Controller, a.Bus, a.Unit = uintp(idx/4), uintp(idx%4/2), uintp(idx%2)
	case "sata":
		a.Controller, a.Bus, a.Unit = uintp(idx/6), uintp(0), uintp(idx%6)
	case "fdc":
		a.Controller, a.Bus, a.Unit = uintp(idx/2), uintp(0), uintp(idx%2)
	default:
		return nil
	}
	return &libvirtxml.DomainAddress{Drive: a}
}

func addImplicitDiskControllers(dv *libvirtxml.DomainDeviceList) {
	for _, typ := range []string{"scsi", "fdc", "ide", "sata"} {
		for _, disk := range dv.Disks {
			if disk.Address == nil || disk.Address.Drive == nil || disk.Target.Bus != typ {
				continue
			}
			for idx := uint(0); idx <= *disk.Address.Drive.Controller; idx++ {
				if findController(dv, typ, idx) < 0 {
					insertController(dv, libvirtxml.DomainController{Type: typ, Index: uintp(idx)})
				}
			}
		}
	}
}

func findController(dv *libvirtxml.DomainDeviceList, typ string, idx uint) int {
	for i, c := range dv.Controllers {
		if c.Type == typ && c.Index != nil && *c.Index == idx {
			return i
		}
	}
	return -1
}

// insertController keeps libvirt's controller order
// (virDomainControllerInsertPreAlloced): next to controllers of the same
// type, by index; a new type goes at the end.
func insertController(dv *libvirtxml.DomainDeviceList, c libvirtxml.DomainController) {
	at := len(dv.Controllers)
	for i := len(dv.Controllers) - 1; i >= 0; i-- {
		cur := dv.Controllers[i]
		if cur.Type != c.Type || cur.Index == nil {
			continue
		}
		if *cur.Index > *c.Index {
			at = i
		} else {
			at = i + 1
			break
		}
	}
	dv.Controllers = append(dv.Controllers, libvirtxml.DomainController{})
	copy(dv.Controllers[at+1:], dv.Controllers[at:])
	dv.Controllers[at] = c
}

func addInput(dv *libvirtxml.DomainDeviceList, typ, bus string) {
	for _, in := range dv.Inputs {
		if in.Type == typ && (in.Bus == bus || in.Bus == "") {
			return
		}
	}
	dv.Inputs = append(dv.Inputs, libvirtxml.DomainInput{Type: typ, Bus: bus})
}

// applyChardevDefaults pairs serial0 and the console the way
// virDomainDefAddConsoleCompat does: a console of type serial mirrors
// serial 0, and is created for serial 0 when missing.
func applyChardevDefaults(dv *libvirtxml.DomainDeviceList) {
	if len(dv.Serials) == 0 && len(dv.Consoles) > 0 {
		c := dv.Consoles[0]
		dv.Serials = append(dv.Serials, libvirtxml.DomainSerial{Source: c.Source, Log: c.Log})
	}
	for i := range dv.Serials {
		s := &dv.Serials[i]
		if s.Source == nil {
			s.Source = &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}
		}
		if s.Target == nil {
			s.Target = &libvirtxml.DomainSerialTarget{}
		}
		if s.Target.Port == nil {
			s.Target.Port = uintp(uint(i))
		}
		s.Target.Type = "isa-serial"
		s.Target.Model = &libvirtxml.DomainSerialTargetModel{Name: "isa-serial"}
	}
	if len(dv.Serials) == 0 {
		return
	}
	if len(dv.Consoles) == 0 {
		dv.Consoles = []libvirtxml.DomainConsole{{}}
	}
	s := dv.Serials[0]
	c := &dv.Consoles[0]
	c.Source, c.Log = s.Source, s.Log
	c.Target = &libvirtxml.DomainConsoleTarget{Type: "serial", Port: uintp(0)}
}

// applyVideoDefaults: qemuDomainDeviceVideoDefPostParse and
// virDomainVideoDefaultRAM (16 MiB of VRAM for vga and cirrus), one head,
// the first video primary.
func applyVideoDefaults(dv *libvirtxml.DomainDeviceList) {
	for i := range dv.Videos {
		m := &dv.Videos[i].Model
		if m.Type == "" {
			m.Type = "cirrus"
		}
		if m.Type == "none" {
			continue
		}
		if m.VRam == 0 && (m.Type == "vga" || m.Type == "cirrus") {
			m.VRam = 16384
		}
		if m.Type == "qxl" {
			// virDomainVideoDefaultRAM and qemuDomainDeviceVideoDefPostParse:
			// 64 MiB of RAM and VRAM, 16 MiB of VGA memory.
			if m.Ram == 0 {
				m.Ram = 65536
			}
			if m.VRam == 0 {
				m.VRam = 65536
			}
			if m.VGAMem == 0 {
				m.VGAMem = 16384
			}
		}
		if m.Heads == 0 {
			m.Heads = 1
		}
		if i == 0 {
			m.Primary = "yes"
		}
	}
}

func applyGraphicsDefaults(dv *libvirtxml.DomainDeviceList) {
	for i := range dv.Graphics {
		if s := dv.Graphics[i].Spice; s != nil {
			// virDomainGraphicsDefParseXMLSpice: port -1 means autoport,
			// and an autoport display has no fixed ports to keep.
			if s.Port == -1 || s.TLSPort == -1 || s.Port == 0 && s.TLSPort == 0 && s.AutoPort == "" {
				s.AutoPort = "yes"
			}
			if s.AutoPort == "yes" {
				s.Port, s.TLSPort = 0, 0
			}
			if len(s.Listeners) == 0 {
				s.Listeners = []libvirtxml.DomainGraphicListener{{Address: &libvirtxml.DomainGraphicListenerAddress{Address: s.Listen}}}
			}
			if s.Listen == "" && s.Listeners[0].Address != nil {
				s.Listen = s.Listeners[0].Address.Address
			}
			continue
		}
		v := dv.Graphics[i].VNC
		if v == nil {
			continue
		}
		if v.Port == 0 && v.AutoPort == "" || v.Port == -1 {
			v.Port, v.AutoPort = -1, "yes"
		}
		if len(v.Listeners) == 0 {
			// The listen attribute becomes a <listen type='address'/>
			// child (virDomainGraphicsListensParseXML).
			v.Listeners = []libvirtxml.DomainGraphicListener{{Address: &libvirtxml.DomainGraphicListenerAddress{Address: v.Listen}}}
		}
		if v.Listen == "" && v.Listeners[0].Address != nil {
			v.Listen = v.Listeners[0].Address.Address
		}
	}
}

// assignUSBAddresses gives USB devices consecutive ports on bus 0 in
// qemuDomainAssignUSBAddresses' order, inputs before redirected devices
// (virDomainUSBAddressAssign for a hub-less controller).
func assignUSBAddresses(dv *libvirtxml.DomainDeviceList) {
	var addrs []**libvirtxml.DomainAddress
	for i := range dv.Inputs {
		if dv.Inputs[i].Bus == "usb" {
			addrs = append(addrs, &dv.Inputs[i].Address)
		}
	}
	for i := range dv.RedirDevs {
		addrs = append(addrs, &dv.RedirDevs[i].Address)
	}
	used := map[string]bool{}
	for _, a := range addrs {
		if *a != nil && (*a).USB != nil {
			used[(*a).USB.Port] = true
		}
	}
	port := 0
	for _, a := range addrs {
		if *a != nil {
			continue
		}
		port++
		for used[fmt.Sprint(port)] {
			port++
		}
		*a = &libvirtxml.DomainAddress{USB: &libvirtxml.DomainAddressUSB{Bus: uintp(0), Port: fmt.Sprint(port)}}
	}
}

func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// randomMAC uses QEMU's OUI 52:54:00 like virDomainNetGenerateMAC.
func randomMAC() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}
