package migcheck

import (
	"encoding/xml"
	"reflect"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// ABIOptions adjusts CheckABI.
type ABIOptions struct {
	// DestName is the destination_name parameter. libvirt requires the
	// destination XML to keep the source name and renames afterwards;
	// govirtd also accepts an XML already carrying DestName.
	DestName string
}

// abiErr is every ABI mismatch: VIR_ERR_CONFIG_UNSUPPORTED, printed as
// "unsupported configuration: Target ...". virDomainDefCheckABIStability
// lives in src/conf, whose errors carry VIR_FROM_DOMAIN.
func abiErr(format string, args ...any) error {
	return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromDomain, format, args...)
}

// CheckABI is virDomainDefCheckABIStabilityFlags with
// VIR_DOMAIN_DEF_ABI_CHECK_SKIP_VOLATILE, as the QEMU driver runs it on a
// migration's destination_xml: it reports the first guest-visible
// difference between src (the domain's migratable definition, i.e. what
// Begin3 returns) and dst (the user's XML), in libvirt's order and, for
// the checks below, libvirt's wording. Host-side settings (disk sources,
// cache modes, interface sources, graphics, title, description, metadata,
// current memory) may differ.
//
// Both definitions should be in the same state (both with or both without
// libvirt's defaults and addresses), as libvirt parses both.
func CheckABI(src, dst *libvirtxml.Domain, opts ABIOptions) error {
	if src.Type != dst.Type {
		return abiErr("Target domain virt type %s does not match source %s", dst.Type, src.Type)
	}
	if normUUID(src.UUID) != normUUID(dst.UUID) {
		return abiErr("Target domain uuid %s does not match source %s", dst.UUID, src.UUID)
	}
	if src.Name != dst.Name && (opts.DestName == "" || dst.Name != opts.DestName) {
		return abiErr("Target domain name '%s' does not match source '%s'", dst.Name, src.Name)
	}
	if err := checkMemory(src, dst); err != nil {
		return err
	}
	if err := checkVCPUs(src, dst); err != nil {
		return err
	}
	if s, d := ioThreads(src), ioThreads(dst); s != d {
		return abiErr("Target domain iothreads count %d does not match source %d", d, s)
	}
	so, do := osType(src), osType(dst)
	if so.Type != do.Type {
		return abiErr("Target domain OS type %s does not match source %s", do.Type, so.Type)
	}
	if so.Arch != do.Arch {
		return abiErr("Target domain architecture %s does not match source %s", do.Arch, so.Arch)
	}
	if so.Machine != do.Machine {
		return abiErr("Target domain machine type %s does not match source %s", do.Machine, so.Machine)
	}
	// libvirt compares every feature with its own message; govirtd
	// compares them as a whole.
	if !sameXML(src.Features, dst.Features) {
		return abiErr("Target domain features do not match source")
	}
	if err := checkClock(src.Clock, dst.Clock); err != nil {
		return err
	}
	if err := checkCPU(src.CPU, dst.CPU); err != nil {
		return err
	}
	if !sameXML(src.SysInfo, dst.SysInfo) {
		return abiErr("Target domain sysinfo does not match source")
	}
	return checkDevices(devices(src), devices(dst))
}

func normUUID(u string) string {
	return strings.ToLower(strings.ReplaceAll(u, "-", ""))
}

var memUnits = map[string]uint64{
	"": 1, "k": 1, "KiB": 1, "KB": 1, "b": 0, "bytes": 0, "M": 1 << 10, "MiB": 1 << 10,
	"G": 1 << 20, "GiB": 1 << 20, "T": 1 << 30, "TiB": 1 << 30,
	"MB": 1000 * 1000 / 1024, "GB": 1000 * 1000 * 1000 / 1024,
}

// kib converts a memory amount to KiB, the unit libvirt compares and
// prints. Byte amounts are rounded up as libvirt's parser does.
func kib(v uint, unit string) uint64 {
	if unit == "b" || unit == "bytes" {
		return (uint64(v) + 1023) / 1024
	}
	if unit == "KB" {
		return uint64(v) * 1000 / 1024
	}
	m, ok := memUnits[unit]
	if !ok {
		m = 1
	}
	return uint64(v) * m
}

func checkMemory(src, dst *libvirtxml.Domain) error {
	var s, d uint64
	if src.Memory != nil {
		s = kib(src.Memory.Value, src.Memory.Unit)
	}
	if dst.Memory != nil {
		d = kib(dst.Memory.Value, dst.Memory.Unit)
	}
	if s != d {
		return abiErr("Target domain max memory %d does not match source %d", d, s)
	}
	var sm, dm uint64
	var ss, ds uint
	if src.MaximumMemory != nil {
		sm, ss = kib(src.MaximumMemory.Value, src.MaximumMemory.Unit), src.MaximumMemory.Slots
	}
	if dst.MaximumMemory != nil {
		dm, ds = kib(dst.MaximumMemory.Value, dst.MaximumMemory.Unit), dst.MaximumMemory.Slots
	}
	if sm != dm {
		return abiErr("Target maximum memory size '%d' doesn't match source '%d'", dm, sm)
	}
	if ss != ds {
		return abiErr("Target domain memory slots count '%d' doesn't match source '%d'", ds, ss)
	}
	return nil
}

// vcpuCounts returns maximum and online vCPUs.
func vcpuCounts(d *libvirtxml.Domain) (max, cur uint) {
	if d.VCPU == nil {
		return 1, 1
	}
	max, cur = d.VCPU.Value, d.VCPU.Current
	if cur == 0 {
		cur = max
	}
	return max, cur
}

func checkVCPUs(src, dst *libvirtxml.Domain) error {
	smax, scur := vcpuCounts(src)
	dmax, dcur := vcpuCounts(dst)
	if smax != dmax {
		return abiErr("Target domain vCPU max %d does not match source %d", dmax, smax)
	}
	if scur != dcur {
		// Without <vcpus>, the first min(current) vCPUs are online; the
		// first differing one is the next.
		return abiErr("State of vCPU '%d' differs between source and destination definitions", min(scur, dcur))
	}
	if !sameXML(src.VCPUs, dst.VCPUs) {
		return abiErr("Target domain vCPU configuration does not match source")
	}
	return nil
}

func ioThreads(d *libvirtxml.Domain) uint {
	if d.IOThreadIDs != nil && len(d.IOThreadIDs.IOThreads) > 0 {
		return uint(len(d.IOThreadIDs.IOThreads))
	}
	return d.IOThreads
}

func osType(d *libvirtxml.Domain) libvirtxml.DomainOSType {
	if d.OS == nil || d.OS.Type == nil {
		return libvirtxml.DomainOSType{}
	}
	return *d.OS.Type
}

func checkClock(src, dst *libvirtxml.DomainClock) error {
	var st, dt []libvirtxml.DomainTimer
	if src != nil {
		st = src.Timer
	}
	if dst != nil {
		dt = dst.Timer
	}
	if len(st) != len(dt) {
		return abiErr("Target domain timers do not match source")
	}
	for i := range st {
		s, d := st[i], dt[i]
		if s.Name != d.Name {
			return abiErr("Target timer %s does not match source %s", d.Name, s.Name)
		}
		if s.Present != d.Present {
			return abiErr("Target timer presence %s does not match source %s", d.Present, s.Present)
		}
		if s.Name == "tsc" {
			if s.Frequency != d.Frequency {
				return abiErr("Target TSC frequency %d does not match source %d", d.Frequency, s.Frequency)
			}
			if s.Mode != d.Mode {
				return abiErr("Target TSC mode %s does not match source %s", d.Mode, s.Mode)
			}
		}
	}
	return nil
}

// checkCPU follows virCPUDefIsEqual's order and wording.
func checkCPU(src, dst *libvirtxml.DomainCPU) error {
	if src == nil && dst == nil {
		return nil
	}
	if src == nil || dst == nil {
		return abiErr("Target CPU does not match source")
	}
	if src.Mode != dst.Mode {
		return abiErr("Target CPU mode %s does not match source %s", dst.Mode, src.Mode)
	}
	sm, dm := cpuModel(src), cpuModel(dst)
	if sm != dm {
		return abiErr("Target CPU model %s does not match source %s", dm, sm)
	}
	if src.Vendor != dst.Vendor {
		return abiErr("Target CPU vendor %s does not match source %s", dst.Vendor, src.Vendor)
	}
	var stop, dtop libvirtxml.DomainCPUTopology
	if src.Topology != nil {
		stop = *src.Topology
	}
	if dst.Topology != nil {
		dtop = *dst.Topology
	}
	if stop.Sockets != dtop.Sockets {
		return abiErr("Target CPU sockets %d does not match source %d", dtop.Sockets, stop.Sockets)
	}
	if stop.Dies != dtop.Dies {
		return abiErr("Target CPU dies %d does not match source %d", dtop.Dies, stop.Dies)
	}
	if stop.Cores != dtop.Cores {
		return abiErr("Target CPU cores %d does not match source %d", dtop.Cores, stop.Cores)
	}
	if stop.Threads != dtop.Threads {
		return abiErr("Target CPU threads %d does not match source %d", dtop.Threads, stop.Threads)
	}
	if len(src.Features) != len(dst.Features) {
		return abiErr("Target CPU feature count %d does not match source %d", len(dst.Features), len(src.Features))
	}
	for i := range src.Features {
		s, d := src.Features[i], dst.Features[i]
		if s.Name != d.Name {
			return abiErr("Target CPU feature %s does not match source %s", d.Name, s.Name)
		}
		if s.Policy != d.Policy {
			return abiErr("Target CPU feature policy %s does not match source %s", d.Policy, s.Policy)
		}
	}
	return nil
}

func cpuModel(c *libvirtxml.DomainCPU) string {
	if c.Model == nil {
		return ""
	}
	return c.Model.Value
}

func devices(d *libvirtxml.Domain) *libvirtxml.DomainDeviceList {
	if d.Devices == nil {
		return &libvirtxml.DomainDeviceList{}
	}
	return d.Devices
}

// sameXML compares two values by their XML form: the generic fallback for
// parts libvirt checks field by field.
func sameXML(a, b any) bool {
	ax, errA := xml.Marshal(a)
	bx, errB := xml.Marshal(b)
	return errA == nil && errB == nil && string(ax) == string(bx)
}

func checkDevices(s, d *libvirtxml.DomainDeviceList) error {
	if len(s.Disks) != len(d.Disks) {
		return abiErr("Target domain disk count %d does not match source %d", len(d.Disks), len(s.Disks))
	}
	for i := range s.Disks {
		if err := checkDisk(&s.Disks[i], &d.Disks[i]); err != nil {
			return err
		}
	}
	if len(s.Controllers) != len(d.Controllers) {
		return abiErr("Target domain controller count %d does not match source %d", len(d.Controllers), len(s.Controllers))
	}
	for i := range s.Controllers {
		sc, dc := &s.Controllers[i], &d.Controllers[i]
		if sc.Type != dc.Type {
			return abiErr("Target controller type %s does not match source %s", dc.Type, sc.Type)
		}
		if idx(sc.Index) != idx(dc.Index) {
			return abiErr("Target controller index %d does not match source %d", idx(dc.Index), idx(sc.Index))
		}
		// libvirt prints the model's enum number; govirtd prints its name.
		if sc.Model != dc.Model {
			return abiErr("Target controller model %s does not match source %s", dc.Model, sc.Model)
		}
		if err := checkAddress(sc.Address, dc.Address); err != nil {
			return err
		}
	}
	if err := checkList("filesystem", s.Filesystems, d.Filesystems); err != nil {
		return err
	}
	if len(s.Interfaces) != len(d.Interfaces) {
		return abiErr("Target domain net card count %d does not match source %d", len(d.Interfaces), len(s.Interfaces))
	}
	for i := range s.Interfaces {
		si, di := &s.Interfaces[i], &d.Interfaces[i]
		if sm, dm := ifaceMAC(si), ifaceMAC(di); !strings.EqualFold(sm, dm) {
			return abiErr("Target network card mac %s does not match source %s", dm, sm)
		}
		if sm, dm := ifaceModel(si), ifaceModel(di); sm != dm {
			return abiErr("Target network card model %s does not match source %s", dm, sm)
		}
		if err := checkAddress(si.Address, di.Address); err != nil {
			return err
		}
	}
	if len(s.Inputs) != len(d.Inputs) {
		return abiErr("Target domain input device count %d does not match source %d", len(d.Inputs), len(s.Inputs))
	}
	for i := range s.Inputs {
		si, di := &s.Inputs[i], &d.Inputs[i]
		if si.Type != di.Type {
			return abiErr("Target input device type %s does not match source %s", di.Type, si.Type)
		}
		if si.Bus != di.Bus {
			return abiErr("Target input device bus %s does not match source %s", di.Bus, si.Bus)
		}
		if err := checkAddress(si.Address, di.Address); err != nil {
			return err
		}
	}
	if len(s.Sounds) != len(d.Sounds) {
		return abiErr("Target domain sound card count %d does not match source %d", len(d.Sounds), len(s.Sounds))
	}
	for i := range s.Sounds {
		if s.Sounds[i].Model != d.Sounds[i].Model {
			return abiErr("Target sound card model %s does not match source %s", d.Sounds[i].Model, s.Sounds[i].Model)
		}
		if err := checkAddress(s.Sounds[i].Address, d.Sounds[i].Address); err != nil {
			return err
		}
	}
	if len(s.Videos) != len(d.Videos) {
		return abiErr("Target domain video card count %d does not match source %d", len(d.Videos), len(s.Videos))
	}
	for i := range s.Videos {
		if err := checkVideo(&s.Videos[i], &d.Videos[i]); err != nil {
			return err
		}
	}
	lists := []struct {
		what string
		s, d any
	}{
		{"host device", s.Hostdevs, d.Hostdevs},
		{"smartcard", s.Smartcards, d.Smartcards},
		{"serial port", s.Serials, d.Serials},
		{"parallel port", s.Parallels, d.Parallels},
		{"channel", s.Channels, d.Channels},
		{"console", s.Consoles, d.Consoles},
		{"hub device", s.Hubs, d.Hubs},
		{"redirected devices", s.RedirDevs, d.RedirDevs},
		{"RNG device", s.RNGs, d.RNGs},
		{"panic", s.Panics, d.Panics},
		{"shmem", s.Shmems, d.Shmems},
		{"memory device", s.Memorydevs, d.Memorydevs},
		{"TPM device", s.TPMs, d.TPMs},
		{"watchdog", s.Watchdogs, d.Watchdogs},
	}
	for _, l := range lists {
		if err := checkList(l.what, l.s, l.d); err != nil {
			return err
		}
	}
	if (s.MemBalloon == nil) != (d.MemBalloon == nil) {
		return abiErr("Target domain memory balloon count %d does not match source %d", b2i(d.MemBalloon != nil), b2i(s.MemBalloon != nil))
	}
	if s.MemBalloon != nil {
		if s.MemBalloon.Model != d.MemBalloon.Model {
			return abiErr("Target balloon model %s does not match source %s", d.MemBalloon.Model, s.MemBalloon.Model)
		}
		if s.MemBalloon.AutoDeflate != d.MemBalloon.AutoDeflate {
			return abiErr("Target balloon autodeflate attribute value '%s' does not match source '%s'",
				d.MemBalloon.AutoDeflate, s.MemBalloon.AutoDeflate)
		}
		if err := checkAddress(s.MemBalloon.Address, d.MemBalloon.Address); err != nil {
			return err
		}
	}
	if !sameXML(s.IOMMUs, d.IOMMUs) || !sameXML(s.VSock, d.VSock) || !sameXML(s.NVRAM, d.NVRAM) {
		return abiErr("Target domain device configuration does not match source")
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func idx(p *uint) uint {
	if p == nil {
		return 0
	}
	return *p
}

func ifaceMAC(i *libvirtxml.DomainInterface) string {
	if i.MAC == nil {
		return ""
	}
	return i.MAC.Address
}

func ifaceModel(i *libvirtxml.DomainInterface) string {
	if i.Model == nil {
		return ""
	}
	return i.Model.Type
}

func checkDisk(s, d *libvirtxml.DomainDisk) error {
	if diskDevice(s) != diskDevice(d) {
		return abiErr("Target disk device %s does not match source %s", diskDevice(d), diskDevice(s))
	}
	var st, dt libvirtxml.DomainDiskTarget
	if s.Target != nil {
		st = *s.Target
	}
	if d.Target != nil {
		dt = *d.Target
	}
	if st.Bus != dt.Bus {
		return abiErr("Target disk bus %s does not match source %s", dt.Bus, st.Bus)
	}
	if st.Dev != dt.Dev {
		return abiErr("Target disk %s does not match source %s", dt.Dev, st.Dev)
	}
	if s.Serial != d.Serial {
		return abiErr("Target disk serial %s does not match source %s", nullStr(d.Serial), nullStr(s.Serial))
	}
	if s.WWN != d.WWN {
		return abiErr("Target disk wwn '%s' does not match source '%s'", nullStr(d.WWN), nullStr(s.WWN))
	}
	if diskReadOnly(s) != diskReadOnly(d) || (s.Shareable != nil) != (d.Shareable != nil) {
		return abiErr("Target disk access mode does not match source")
	}
	return checkAddress(s.Address, d.Address)
}

func diskDevice(d *libvirtxml.DomainDisk) string {
	if d.Device == "" {
		return "disk"
	}
	return d.Device
}

// nullStr is libvirt's NULLSTR.
func nullStr(s string) string {
	if s == "" {
		return "<null>"
	}
	return s
}

func checkVideo(s, d *libvirtxml.DomainVideo) error {
	sm, dm := s.Model, d.Model
	if sm.Type != dm.Type {
		return abiErr("Target video card model %s does not match source %s", dm.Type, sm.Type)
	}
	if sm.Ram != dm.Ram {
		return abiErr("Target video card ram %d does not match source %d", dm.Ram, sm.Ram)
	}
	if sm.VRam != dm.VRam {
		return abiErr("Target video card vram %d does not match source %d", dm.VRam, sm.VRam)
	}
	if sm.VRam64 != dm.VRam64 {
		return abiErr("Target video card vram64 %d does not match source %d", dm.VRam64, sm.VRam64)
	}
	if sm.VGAMem != dm.VGAMem {
		return abiErr("Target video card vgamem %d does not match source %d", dm.VGAMem, sm.VGAMem)
	}
	if sm.Heads != dm.Heads {
		return abiErr("Target video card heads %d does not match source %d", dm.Heads, sm.Heads)
	}
	if (sm.Accel == nil) != (dm.Accel == nil) {
		return abiErr("Target video card acceleration does not match source")
	}
	return checkAddress(s.Address, d.Address)
}

// checkList is the generic fallback for device kinds govirtd compares
// without libvirt's per-kind detail: same count (libvirt's wording
// "Target domain %s count %zu does not match source %zu"), same guest
// addresses, and otherwise equal apart from host-side parts.
func checkList(what string, s, d any) error {
	sv, dv := reflect.ValueOf(s), reflect.ValueOf(d)
	if sv.Len() != dv.Len() {
		return abiErr("Target domain %s count %d does not match source %d", what, dv.Len(), sv.Len())
	}
	for i := 0; i < sv.Len(); i++ {
		sa, da := addrField(sv.Index(i)), addrField(dv.Index(i))
		if err := checkAddress(sa, da); err != nil {
			return err
		}
	}
	return nil
}

func addrField(v reflect.Value) *libvirtxml.DomainAddress {
	f := v.FieldByName("Address")
	if !f.IsValid() {
		return nil
	}
	a, _ := f.Interface().(*libvirtxml.DomainAddress)
	return a
}

func addrType(a *libvirtxml.DomainAddress) string {
	switch {
	case a == nil:
		return "none"
	case a.PCI != nil:
		return "pci"
	case a.Drive != nil:
		return "drive"
	case a.VirtioSerial != nil:
		return "virtio-serial"
	case a.CCID != nil:
		return "ccid"
	case a.USB != nil:
		return "usb"
	case a.SpaprVIO != nil:
		return "spapr-vio"
	case a.VirtioS390 != nil:
		return "virtio-s390"
	case a.CCW != nil:
		return "ccw"
	case a.VirtioMMIO != nil:
		return "virtio-mmio"
	case a.ISA != nil:
		return "isa"
	case a.DIMM != nil:
		return "dimm"
	case a.Unassigned != nil:
		return "unassigned"
	}
	return "none"
}

func u(p *uint) uint {
	if p == nil {
		return 0
	}
	return *p
}

// checkAddress is virDomainDeviceInfoCheckABIStability.
func checkAddress(s, d *libvirtxml.DomainAddress) error {
	st, dt := addrType(s), addrType(d)
	if st != dt {
		return abiErr("Target device address type %s does not match source %s", dt, st)
	}
	switch st {
	case "pci":
		sp, dp := s.PCI, d.PCI
		if u(sp.Domain) != u(dp.Domain) || u(sp.Bus) != u(dp.Bus) || u(sp.Slot) != u(dp.Slot) || u(sp.Function) != u(dp.Function) {
			return abiErr("Target device PCI address %04x:%02x:%02x.%02x does not match source %04x:%02x:%02x.%02x",
				u(dp.Domain), u(dp.Bus), u(dp.Slot), u(dp.Function),
				u(sp.Domain), u(sp.Bus), u(sp.Slot), u(sp.Function))
		}
	case "drive":
		sd, dd := s.Drive, d.Drive
		if u(sd.Controller) != u(dd.Controller) || u(sd.Bus) != u(dd.Bus) || u(sd.Unit) != u(dd.Unit) {
			return abiErr("Target device drive address %d:%d:%d does not match source %d:%d:%d",
				u(dd.Controller), u(dd.Bus), u(dd.Unit), u(sd.Controller), u(sd.Bus), u(sd.Unit))
		}
	case "virtio-serial":
		sv, dv := s.VirtioSerial, d.VirtioSerial
		if u(sv.Controller) != u(dv.Controller) || u(sv.Bus) != u(dv.Bus) || u(sv.Port) != u(dv.Port) {
			return abiErr("Target device virtio serial address %d:%d:%d does not match source %d:%d:%d",
				u(dv.Controller), u(dv.Bus), u(dv.Port), u(sv.Controller), u(sv.Bus), u(sv.Port))
		}
	case "ccid":
		sc, dc := s.CCID, d.CCID
		if u(sc.Controller) != u(dc.Controller) || u(sc.Slot) != u(dc.Slot) {
			return abiErr("Target device ccid address %d:%d does not match source %d:%d",
				u(dc.Controller), u(dc.Slot), u(sc.Controller), u(sc.Slot))
		}
	case "isa":
		si, di := s.ISA, d.ISA
		if u(si.IOBase) != u(di.IOBase) || u(si.IRQ) != u(di.IRQ) {
			return abiErr("Target device isa address %d:%d does not match source %d:%d",
				u(di.IOBase), u(di.IRQ), u(si.IOBase), u(si.IRQ))
		}
	case "dimm":
		if u(s.DIMM.Slot) != u(d.DIMM.Slot) {
			return abiErr("Target device dimm slot %d does not match source %d", u(d.DIMM.Slot), u(s.DIMM.Slot))
		}
		var sb, db uint64
		if s.DIMM.Base != nil {
			sb = *s.DIMM.Base
		}
		if d.DIMM.Base != nil {
			db = *d.DIMM.Base
		}
		if sb != db {
			return abiErr("Target device dimm base address '%x' does not match source '%x'", db, sb)
		}
	}
	return nil
}
