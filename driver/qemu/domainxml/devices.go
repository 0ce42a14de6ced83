package domainxml

import (
	"fmt"
	"net"
	"slices"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// This file holds the validation and define-time defaults of the devices
// real tools add besides disks and NICs: virt-install's channels, sound,
// USB redirection, RNG, watchdog and panic devices, SPICE and VNC
// displays, and the tuning elements (iothreads, cputune, memoryBacking).

var (
	allowedDiskCache     = []string{"", "default", "none", "writethrough", "writeback", "directsync", "unsafe"}
	allowedDiskIO        = []string{"", "native", "threads", "io_uring"}
	allowedDiskDiscard   = []string{"", "ignore", "unmap"}
	allowedDetectZeroes  = []string{"", "off", "on", "unmap"}
	allowedErrorPolicy   = []string{"", "stop", "report", "ignore", "enospace"}
	allowedReadErrPolicy = []string{"", "stop", "report", "ignore"}
	allowedSoundModel    = []string{"ich6", "ich9", "ac97", "es1370"}
	allowedWatchdogModel = []string{"i6300esb", "ib700", "itco"}
	allowedWatchdogActs  = []string{"", "reset", "shutdown", "poweroff", "pause", "none", "inject-nmi"}
	allowedRNGDevices    = []string{"/dev/urandom", "/dev/random", "/dev/hwrng"}
	allowedChannelNames  = map[string]bool{"org.qemu.guest_agent.0": true, "com.redhat.spice.0": true}
)

func validateDiskDriver(d *libvirtxml.Domain, disk *libvirtxml.DomainDisk) error {
	drv := disk.Driver
	dev := disk.Target.Dev
	for _, c := range []struct {
		what, v string
		ok      []string
	}{
		{"cache", drv.Cache, allowedDiskCache},
		{"io", drv.IO, allowedDiskIO},
		{"discard", drv.Discard, allowedDiskDiscard},
		{"detect_zeroes", drv.DetectZeros, allowedDetectZeroes},
		{"error_policy", drv.ErrorPolicy, allowedErrorPolicy},
		{"rerror_policy", drv.RErrorPolicy, allowedReadErrPolicy},
	} {
		if !slices.Contains(c.ok, c.v) {
			return unsupported("disk %s: <driver %s> '%s' is not supported by govirtd", dev, c.what, c.v)
		}
	}
	// qemuValidateDomainDeviceDefDiskBlkdeviotune & co.: native AIO
	// needs the host page cache bypassed.
	if drv.IO == "native" && drv.Cache != "none" && drv.Cache != "directsync" {
		return unsupported("disk %s: native I/O needs either no disk cache or directsync cache mode, QEMU will fallback to aio=threads", dev)
	}
	if drv.IOThread != nil {
		if diskBus(disk) != "virtio" {
			return unsupported("IOThreads only available for virtio pci and virtio ccw disk")
		}
		if !hasIOThread(d, *drv.IOThread) {
			return compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "Disk iothread '%d' not defined in iothreadid", *drv.IOThread)
		}
	}
	if drv.IOEventFD != "" || drv.EventIDX != "" || drv.CopyOnRead != "" || drv.DiscardNoUnref != "" ||
		drv.IOThreads != nil || drv.Queues != nil || drv.QueueSize != nil || drv.IOMMU != "" || drv.ATS != "" ||
		drv.Packed != "" || drv.PagePerVQ != "" || drv.MetadataCache != nil || drv.Statistics != nil {
		return unsupported("disk %s: <driver> attributes other than name, type, cache, io, discard, detect_zeroes, error_policy, rerror_policy and iothread are not supported by govirtd", dev)
	}
	return nil
}

// iothreadIDs lists the domain's IOThread ids: the explicit <iothreadids>,
// else 1..<iothreads> (virDomainIOThreadIDDefArrayInit).
func iothreadIDs(d *libvirtxml.Domain) []uint {
	var ids []uint
	if d.IOThreadIDs != nil {
		for _, t := range d.IOThreadIDs.IOThreads {
			ids = append(ids, t.ID)
		}
	}
	for n := uint(1); uint(len(ids)) < d.IOThreads; n++ {
		if !slices.Contains(ids, n) {
			ids = append(ids, n)
		}
	}
	return ids
}

func hasIOThread(d *libvirtxml.Domain, id uint) bool {
	return slices.Contains(iothreadIDs(d), id)
}

func loopbackListen(addrs ...string) error {
	for _, a := range addrs {
		if ip := net.ParseIP(a); a != "" && (ip == nil || !ip.IsLoopback()) {
			return unsupported("<graphics> listen address '%s' is not a loopback address", a)
		}
	}
	return nil
}

func validateGraphics(g *libvirtxml.DomainGraphic) error {
	var listen string
	var listeners []libvirtxml.DomainGraphicListener
	switch {
	case g.VNC != nil:
		if g.VNC.Socket != "" {
			return unsupported("<graphics type='vnc' socket> is not supported by govirtd")
		}
		listen, listeners = g.VNC.Listen, g.VNC.Listeners
	case g.Spice != nil:
		s := g.Spice
		if s.TLSPort > 0 || s.DefaultMode == "secure" || len(s.Channel) > 0 || s.GL != nil || s.Passwd != "" {
			return unsupported("<graphics type='spice'> with TLS, channel, GL or password settings is not supported by govirtd")
		}
		listen, listeners = s.Listen, s.Listeners
	default:
		return unsupported("<graphics type> other than 'vnc' and 'spice' is not supported by govirtd")
	}
	addrs := []string{listen}
	for _, l := range listeners {
		if l.Address == nil {
			return unsupported("<graphics><listen type> other than 'address' is not supported by govirtd")
		}
		addrs = append(addrs, l.Address.Address)
	}
	return loopbackListen(addrs...)
}

func hasSpice(dv *libvirtxml.DomainDeviceList) bool {
	for _, g := range dv.Graphics {
		if g.Spice != nil {
			return true
		}
	}
	return false
}

// validateOtherDevices checks the devices of this file and the tuning
// elements.
func validateOtherDevices(d *libvirtxml.Domain, q35 bool) error {
	dv := dev(d)
	if err := validateTPMs(dv); err != nil {
		return err
	}
	for i, ch := range dv.Channels {
		if ch.Target == nil || ch.Target.VirtIO == nil {
			return unsupported("<channel><target type> other than 'virtio' is not supported by govirtd")
		}
		if ch.Log != nil || ch.Protocol != nil {
			return unsupported("channel %d: <log> and <protocol> are not supported by govirtd", i)
		}
		src := ch.Source
		switch {
		case src == nil:
			return compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "missing source for channel %d", i)
		case src.UNIX != nil:
			if src.UNIX.Mode != "" && src.UNIX.Mode != "bind" {
				return unsupported("channel %d: unix socket mode '%s' is not supported by govirtd (use 'bind')", i, src.UNIX.Mode)
			}
			if src.UNIX.Reconnect != nil {
				return unsupported("channel %d: <reconnect> is not supported by govirtd", i)
			}
			if src.UNIX.Path == "" && ch.Target.VirtIO.Name == "" {
				return compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "Missing source path attribute for char device")
			}
		case src.SpiceVMC != nil:
			if !hasSpice(dv) {
				return unsupported("spicevmc channel %d needs a <graphics type='spice'>", i)
			}
		case src.Pty != nil:
		default:
			return unsupported("channel %d: source type other than 'unix', 'spicevmc' and 'pty' is not supported by govirtd", i)
		}
		if n := ch.Target.VirtIO.Name; n != "" && !allowedChannelNames[n] && src.SpiceVMC != nil {
			return unsupported("channel %d: spicevmc channel name '%s' is not supported (use com.redhat.spice.0)", i, n)
		}
	}
	for _, s := range dv.Sounds {
		if err := checkEnum("<sound model>", s.Model, allowedSoundModel); err != nil {
			return err
		}
		if len(s.Codec) > 0 || s.MultiChannel != "" || s.Streams != 0 || s.Driver != nil {
			return unsupported("<sound> codec, multichannel and driver settings are not supported by govirtd")
		}
		if q35 && s.Model != "ich9" {
			return unsupported("<sound model> '%s' on q35 is not supported by govirtd (use 'ich9')", s.Model)
		}
		if !q35 && s.Model == "ich9" {
			return unsupported("<sound model> 'ich9' needs a q35 machine in govirtd")
		}
	}
	for _, r := range dv.RedirDevs {
		if r.Bus != "usb" || r.Source == nil || r.Source.SpiceVMC == nil {
			return unsupported("<redirdev> other than bus 'usb' type 'spicevmc' is not supported by govirtd")
		}
		if !hasSpice(dv) {
			return unsupported("<redirdev type='spicevmc'> needs a <graphics type='spice'>")
		}
		if r.Boot != nil {
			return unsupported("<redirdev><boot> is not supported by govirtd")
		}
	}
	for _, w := range dv.Watchdogs {
		if err := checkEnum("<watchdog model>", w.Model, allowedWatchdogModel); err != nil {
			return err
		}
		if err := checkEnum("<watchdog action>", w.Action, allowedWatchdogActs); err != nil {
			return err
		}
		if w.Model == "itco" && !q35 {
			return unsupported("watchdog model 'itco' is only part of q35 machines")
		}
		if w.Model == "i6300esb" && q35 {
			return unsupported("<watchdog model> 'i6300esb' on q35 is not supported by govirtd (use 'itco')")
		}
	}
	for _, r := range dv.RNGs {
		if r.Model != "virtio" {
			return unsupported("<rng model> '%s' is not supported by govirtd", r.Model)
		}
		if r.Driver != nil || r.Rate != nil {
			return unsupported("<rng> driver and rate settings are not supported by govirtd")
		}
		b := r.Backend
		switch {
		case b == nil:
			return compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "missing RNG device backend")
		case b.Random != nil:
			if p := b.Random.Device; p != "" && !slices.Contains(allowedRNGDevices, p) {
				return unsupported("<rng><backend model='random'> device '%s' is not supported by govirtd", p)
			}
		case b.EGD != nil:
			src := b.EGD.Source
			if src == nil || (src.TCP == nil && src.UNIX == nil) {
				return unsupported("<rng><backend model='egd'> needs a tcp or unix source in govirtd")
			}
			if src.TCP != nil {
				if err := loopbackListen(src.TCP.Host); err != nil || src.TCP.Host == "" || src.TCP.Mode == "bind" {
					return unsupported("<rng><backend model='egd'> tcp source must connect to a loopback address")
				}
			}
			if src.UNIX != nil && (src.UNIX.Path == "" || src.UNIX.Mode == "bind") {
				return unsupported("<rng><backend model='egd'> unix source must connect to a path")
			}
		default:
			return unsupported("<rng><backend> other than 'random' and 'egd' is not supported by govirtd")
		}
	}
	for _, p := range dv.Panics {
		if p.Model != "" && p.Model != "isa" {
			return unsupported("<panic model> '%s' is not supported by govirtd", p.Model)
		}
		if p.Address != nil && (p.Address.ISA == nil) {
			return unsupported("<panic> address other than 'isa' is not supported by govirtd")
		}
	}
	if mb := d.MemoryBacking; mb != nil {
		if mb.MemoryHugePages != nil || mb.MemoryLocked != nil || mb.MemorySource != nil || mb.MemoryAccess != nil ||
			mb.MemoryAllocation != nil || mb.MemoryDiscard != nil {
			return unsupported("<memoryBacking> other than <nosharepages/> is not supported by govirtd")
		}
	}
	if t := d.CPUTune; t != nil {
		c := *t
		c.VCPUPin, c.EmulatorPin = nil, nil
		if !isZeroCPUTune(&c) {
			return unsupported("<cputune> other than <vcpupin> and <emulatorpin> is not supported by govirtd")
		}
		nvcpu := uint(1)
		if d.VCPU != nil && d.VCPU.Value > 0 {
			nvcpu = d.VCPU.Value
		}
		for _, p := range t.VCPUPin {
			if p.VCPU >= nvcpu {
				return compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "vcpupin: vCPU %d is out of range (the domain has %d)", p.VCPU, nvcpu)
			}
			if _, err := ParseCPUSet(p.CPUSet); err != nil {
				return err
			}
		}
		if p := t.EmulatorPin; p != nil {
			if _, err := ParseCPUSet(p.CPUSet); err != nil {
				return err
			}
		}
	}
	if d.VCPU != nil && d.VCPU.CPUSet != "" {
		if _, err := ParseCPUSet(d.VCPU.CPUSet); err != nil {
			return err
		}
	}
	return nil
}

func isZeroCPUTune(t *libvirtxml.DomainCPUTune) bool {
	return t.Shares == nil && t.Period == nil && t.Quota == nil && t.GlobalPeriod == nil && t.GlobalQuota == nil &&
		t.EmulatorPeriod == nil && t.EmulatorQuota == nil && t.IOThreadPeriod == nil && t.IOThreadQuota == nil &&
		t.IOThreadPin == nil && t.VCPUSched == nil && t.EmulatorSched == nil && t.IOThreadSched == nil &&
		t.CacheTune == nil && t.MemoryTune == nil && t.EnergyTune == nil
}

// ParseCPUSet parses libvirt's cpuset syntax ("0-3,^2,6") into CPU
// numbers, like virBitmapParse.
func ParseCPUSet(s string) ([]int, error) {
	bad := func() error {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, "Failed to parse bitmap '%s'", s)
	}
	set := map[int]bool{}
	var order []int
	for _, part := range splitComma(s) {
		neg := false
		if len(part) > 0 && part[0] == '^' {
			neg, part = true, part[1:]
		}
		var lo, hi int
		if n, err := fmt.Sscanf(part, "%d-%d", &lo, &hi); err == nil && n == 2 {
		} else if n, err := fmt.Sscanf(part, "%d", &lo); err == nil && n == 1 && fmt.Sprint(lo) == part {
			hi = lo
		} else {
			return nil, bad()
		}
		if lo < 0 || hi < lo || hi > 4095 {
			return nil, bad()
		}
		for c := lo; c <= hi; c++ {
			if neg {
				delete(set, c)
			} else if !set[c] {
				set[c] = true
				order = append(order, c)
			}
		}
	}
	var out []int
	for _, c := range order {
		if set[c] {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil, bad()
	}
	return out, nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// assignControllerIndices gives controllers without an index one, as
// virDomainControllerDefParseXML/virDomainDefPostParse do: a root PCI
// bus is 0, a USB companion controller shares its EHCI master's index,
// anything else takes the lowest index its type does not use yet.
func assignControllerIndices(dv *libvirtxml.DomainDeviceList) {
	lastUSB := uint(0)
	for i := range dv.Controllers {
		c := &dv.Controllers[i]
		if c.Index != nil {
			if c.Type == "usb" && (c.USB == nil || c.USB.Master == nil) {
				lastUSB = *c.Index
			}
			continue
		}
		switch {
		case c.Type == "pci" && (c.Model == "pci-root" || c.Model == "pcie-root"):
			c.Index = uintp(0)
		case c.Type == "usb" && c.USB != nil && c.USB.Master != nil:
			c.Index = uintp(lastUSB)
		case c.Type == "pci":
			// The root bus is 0 even when it comes later without an index.
			idx := uint(1)
			for _, o := range dv.Controllers {
				if o.Type == "pci" && o.Index != nil && *o.Index >= idx {
					idx = *o.Index + 1
				}
			}
			c.Index = uintp(idx)
		default:
			idx := uint(0)
			for findController(dv, c.Type, idx) >= 0 {
				idx++
			}
			c.Index = uintp(idx)
			if c.Type == "usb" {
				lastUSB = idx
			}
		}
	}
}

// applyOtherDeviceDefaults fills in what libvirt adds for the devices of
// this file at define time.
func applyOtherDeviceDefaults(dv *libvirtxml.DomainDeviceList) {
	// qemuDomainTPMDefPostParse: TIS by default on x86; the emulator's
	// version 2.0 for CRB, 1.2 for TIS.
	for i := range dv.TPMs {
		tpm := &dv.TPMs[i]
		if tpm.Model == "" {
			tpm.Model = "tpm-tis"
		}
		if tpm.Backend == nil {
			continue
		}
		if e := tpm.Backend.Emulator; e != nil && e.Version == "" {
			e.Version = "1.2"
			if tpm.Model == "tpm-crb" {
				e.Version = "2.0"
			}
		}
	}
	// A virtio channel needs a virtio-serial controller
	// (virDomainDefAddImplicitControllers) and gets the next port on it;
	// port 0 is kept for a virtio console.
	port := uint(0)
	for i := range dv.Channels {
		ch := &dv.Channels[i]
		if ch.Target == nil || ch.Target.VirtIO == nil {
			continue
		}
		if findController(dv, "virtio-serial", 0) < 0 {
			insertController(dv, libvirtxml.DomainController{Type: "virtio-serial", Index: uintp(0)})
		}
		if a := ch.Address; a != nil && a.VirtioSerial != nil && a.VirtioSerial.Port != nil {
			port = max(port, *a.VirtioSerial.Port)
			continue
		}
		port++
		ch.Address = &libvirtxml.DomainAddress{VirtioSerial: &libvirtxml.DomainAddressVirtioSerial{
			Controller: uintp(0), Bus: uintp(0), Port: uintp(port),
		}}
	}
	for i := range dv.Watchdogs {
		if dv.Watchdogs[i].Action == "" {
			dv.Watchdogs[i].Action = "reset"
		}
	}
	for i := range dv.Panics {
		if dv.Panics[i].Model == "" {
			dv.Panics[i].Model = "isa"
		}
	}
	for i := range dv.RNGs {
		if b := dv.RNGs[i].Backend; b != nil && b.Random != nil && b.Random.Device == "" {
			b.Random.Device = "/dev/urandom"
		}
	}
}

// driveLimits is how many controllers, buses, targets and units QEMU's
// i440fx/q35 IDE, AHCI and floppy controllers have: one IDE controller
// with two buses of two units, AHCI controllers of six ports each (a
// generous 16 of them, each taking a PCI slot), one floppy controller with
// two drives.
var driveLimits = map[string]struct{ controllers, buses, targets, units uint }{
	"ide":  {1, 2, 1, 2},
	"sata": {16, 1, 1, 6},
	"fdc":  {1, 1, 1, 2},
}

// validateDriveAddress refuses a <disk><address type='drive'> the disk's
// controller cannot have. Attributes left out are 0, as libvirt reads them.
func validateDriveAddress(disk *libvirtxml.DomainDisk, bus string) error {
	addr := disk.Address
	if addr == nil {
		// The address defaults will derive from the target name
		// (hdc is IDE controller 0, bus 1, unit 0), checked the same way.
		if addr = driveAddress(bus, disk.Target.Dev); addr == nil {
			return nil
		}
	}
	a := addr.Drive
	if a == nil {
		if addr.PCI == nil && bus == "virtio" {
			return unsupported("disk %s: a virtio disk needs a PCI address", disk.Target.Dev)
		}
		return nil
	}
	lim, ok := driveLimits[bus]
	if !ok {
		return unsupported("disk %s: a drive address needs an IDE, SATA or floppy disk, not bus '%s'", disk.Target.Dev, bus)
	}
	for _, f := range []struct {
		name  string
		v     *uint
		limit uint
	}{
		{"controller", a.Controller, lim.controllers},
		{"bus", a.Bus, lim.buses},
		{"target", a.Target, lim.targets},
		{"unit", a.Unit, lim.units},
	} {
		if f.v != nil && *f.v >= f.limit {
			return unsupported("disk %s: %s drive address %s='%d' is out of range (%s has %d)", disk.Target.Dev, bus, f.name, *f.v, f.name, f.limit)
		}
	}
	return nil
}

// validateUSBUse refuses USB devices when <controller type='usb'
// model='none'/> says the guest has no USB (as libvirt's
// virDomainDefValidate does).
func validateUSBUse(dv *libvirtxml.DomainDeviceList) error {
	none := false
	for _, c := range dv.Controllers {
		if c.Type == "usb" && c.Model == "none" {
			none = true
		}
	}
	if !none {
		return nil
	}
	uses := len(dv.RedirDevs) > 0
	for _, in := range dv.Inputs {
		uses = uses || in.Bus == "usb" || (in.Bus == "" && in.Type == "tablet")
	}
	for _, disk := range dv.Disks {
		uses = uses || diskBus(&disk) == "usb"
	}
	if uses {
		return unsupported("USB is disabled for this domain, but USB devices are present in the domain XML")
	}
	return nil
}

// validateTPMs keeps to what govirtd runs: one TPM, TIS or CRB, emulated
// by swtpm (TPM 1.2 or 2.0), without encryption or libvirt's newer
// emulator options.
func validateTPMs(dv *libvirtxml.DomainDeviceList) error {
	if len(dv.TPMs) > 1 {
		return unsupported("only a single TPM device is supported by govirtd")
	}
	for _, tpm := range dv.TPMs {
		if err := checkEnum("<tpm model>", tpm.Model, []string{"", "tpm-tis", "tpm-crb"}); err != nil {
			return err
		}
		if tpm.Backend == nil || tpm.Backend.Emulator == nil {
			return unsupported("<tpm><backend type> other than 'emulator' is not supported by govirtd")
		}
		e := tpm.Backend.Emulator
		if err := checkEnum("<tpm><backend version>", e.Version, []string{"", "1.2", "2.0"}); err != nil {
			return err
		}
		if tpm.Model == "tpm-crb" && e.Version == "1.2" {
			return unsupported("TPM version '1.2' is not supported with model 'tpm-crb'")
		}
		if e.Encryption != nil || e.PersistentState != "" || e.ActivePCRBanks != nil || e.Source != nil || e.Profile != nil || e.Debug != 0 {
			return unsupported("<tpm><backend type='emulator'> options are not supported by govirtd")
		}
	}
	return nil
}
