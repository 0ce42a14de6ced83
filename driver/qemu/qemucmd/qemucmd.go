// Package qemucmd builds the qemu-system-x86_64 command line libvirt 9.0
// builds for a domain definition when it targets QEMU 7.2.
//
// A live migration only succeeds between QEMU processes with the same
// machine type, RAM blocks and devices (drivers, ids, bus addresses), so a
// guest started by govirtd can move to or from a libvirtd host only if this
// package reproduces libvirt's command line. The order of arguments and the
// JSON syntax follow libvirt 9.0's src/qemu/qemu_command.c for the
// capabilities QEMU 7.2 reports; everything this package does not know how
// to build is refused with VIR_ERR_CONFIG_UNSUPPORTED rather than dropped,
// because a missing device breaks migration in ways that are hard to trace.
package qemucmd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// Options carries what the command line needs beyond the definition: the
// runtime paths and file descriptors libvirt decides at start time.
type Options struct {
	// Emulator is the QEMU binary; empty means the definition's <emulator>.
	Emulator string
	// DomainDir is the per-domain runtime directory
	// (libvirt: /var/lib/libvirt/qemu/domain-ID-NAME). The master key
	// and the HOME/XDG directories are referenced there; nothing is written.
	DomainDir string
	// MonitorFD is the descriptor number, in the QEMU process, of an
	// inherited listening unix socket for QMP.
	MonitorFD int
	// Incoming is "" normally and "defer" for a migration destination.
	Incoming string
	// KVM selects -accel kvm instead of -accel tcg.
	KVM bool
	// PathEnv is the PATH passed to QEMU; empty means this process's PATH
	// (libvirt passes its own PATH through).
	PathEnv string
	// FirstPassFD is the descriptor number of the first file passed to
	// QEMU with -add-fd (chardev files); 0 means MonitorFD+1. Descriptors
	// are numbered consecutively from there, see Command.Files.
	FirstPassFD int
	// TPMSocket is the control socket of the swtpm process emulating the
	// guest's <tpm> (libvirt: /run/libvirt/qemu/swtpm/ID-NAME-swtpm.sock).
	TPMSocket string
}

// PassedFile is a file libvirt opens itself and hands to QEMU as an fd set
// (-add-fd), so that QEMU never opens guest-log paths with its own rights.
// The caller opens Path as described and places it at descriptor FD.
type PassedFile struct {
	FD     int
	Path   string
	Append bool   // open with O_APPEND; otherwise the file is truncated, as libvirt does
	Opaque string // the label libvirt gives the fd set (e.g. serial0-source)
	// Listen makes Path a listening unix socket rather than a file: libvirt
	// creates the sockets of unix channels itself and passes them, so
	// they exist before QEMU runs (qemuProcessPrepareHostChardevSource).
	Listen bool
}

// Command is a ready-to-exec QEMU invocation.
type Command struct {
	Path string
	Args []string
	Env  []string
	// Files lists the descriptors QEMU expects besides the monitor.
	Files []PassedFile
	// Taps lists the tap device descriptors QEMU expects, one per NIC of
	// type network, bridge or ethernet; the caller opens the taps.
	Taps []PassedTap
}

// PassedTap is the descriptor number at which QEMU expects the tap device
// of the NIC with the given alias (net0).
type PassedTap struct {
	FD    int
	Alias string
}

// builder accumulates the command line while keeping the per-start state
// libvirt keeps in its private domain data (fd set and node name counters).
type builder struct {
	dom    *libvirtxml.Domain
	opts   Options
	cmd    *Command
	q35    bool
	nextFD int
	fdset  int
}

func unsupported(format string, args ...any) error {
	return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, format, args...)
}

// Build returns the QEMU command line for dom. dom must already carry
// libvirt's define-time defaults (addresses, default controllers,
// canonical machine type); missing device aliases are filled in with
// AssignAliases, which modifies dom the way libvirt modifies the live
// definition at start.
func Build(dom *libvirtxml.Domain, opts Options) (*Command, error) {
	if dom == nil {
		return nil, unsupported("missing domain definition")
	}
	if opts.DomainDir == "" {
		return nil, unsupported("missing per-domain runtime directory for '%s'", dom.Name)
	}
	if opts.MonitorFD <= 2 {
		return nil, unsupported("invalid monitor file descriptor %d", opts.MonitorFD)
	}
	emulator := opts.Emulator
	if emulator == "" && dom.Devices != nil {
		emulator = dom.Devices.Emulator
	}
	if emulator == "" {
		return nil, unsupported("no emulator for domain '%s'", dom.Name)
	}
	if dom.Devices == nil {
		dom.Devices = &libvirtxml.DomainDeviceList{}
	}
	AssignAliases(dom)

	b := &builder{
		dom:  dom,
		opts: opts,
		cmd:  &Command{Path: emulator},
		q35:  isQ35(dom),
	}
	b.nextFD = opts.FirstPassFD
	if b.nextFD == 0 {
		b.nextFD = opts.MonitorFD + 1
	}
	pathEnv := opts.PathEnv
	if pathEnv == "" {
		pathEnv = os.Getenv("PATH")
	}
	dir := opts.DomainDir
	// virCommandAddEnvPassCommon + virCommandAddEnvXDG: QEMU gets a private
	// HOME and XDG tree inside the domain directory.
	b.cmd.Env = []string{
		"LC_ALL=C",
		"PATH=" + pathEnv,
		"HOME=" + dir,
		"XDG_DATA_HOME=" + filepath.Join(dir, ".local/share"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, ".cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, ".config"),
	}

	steps := []func() error{
		b.checkUnsupported,
		b.header,
		b.machine,
		b.cpu,
		b.memory,
		b.smp,
		b.iothreads,
		b.misc,
		b.clock,
		b.pm,
		b.boot,
		b.controllers,
		b.disks,
		b.nets,
		b.serials,
		b.channels,
		b.consoles,
		b.tpms,
		b.inputs,
		b.audio,
		b.graphics,
		b.videos,
		b.sounds,
		b.watchdogs,
		b.redirdevs,
		b.incoming,
		b.memballoon,
		b.rngs,
		b.trailer,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return b.cmd, nil
}

func (b *builder) arg(a ...string) { b.cmd.Args = append(b.cmd.Args, a...) }

func (b *builder) device(p *props) { b.arg("-device", p.String()) }

// checkUnsupported refuses definition parts this package cannot express
// on the command line (or whose command line it has not verified against
// libvirt), naming each so the user knows what to remove.
func (b *builder) checkUnsupported() error {
	d := b.dom
	dev := d.Devices
	if d.OS == nil || d.OS.Type == nil {
		return unsupported("missing <os><type> in domain '%s'", d.Name)
	}
	if t := d.OS.Type.Type; t != "hvm" {
		return unsupported("os type '%s' is not supported", t)
	}
	if a := d.OS.Type.Arch; a != "" && a != "x86_64" {
		return unsupported("architecture '%s' is not supported", a)
	}
	m := d.OS.Type.Machine
	if !(m == "pc" || m == "q35" || strings.HasPrefix(m, "pc-i440fx-") || strings.HasPrefix(m, "pc-q35-")) {
		return unsupported("machine type '%s' is not supported", m)
	}
	checks := []struct {
		bad  bool
		what string
	}{
		{d.MaximumMemory != nil, "<maxMemory> (memory hotplug)"},
		{d.MemoryBacking != nil && (d.MemoryBacking.MemoryHugePages != nil || d.MemoryBacking.MemoryLocked != nil ||
			d.MemoryBacking.MemorySource != nil || d.MemoryBacking.MemoryAccess != nil ||
			d.MemoryBacking.MemoryAllocation != nil || d.MemoryBacking.MemoryDiscard != nil), "<memoryBacking> other than <nosharepages/>"},
		{d.GenID != nil, "<genid>"},
		{d.OS.Loader != nil || d.OS.NVRam != nil || d.OS.Firmware != "", "firmware <loader>/<nvram>"},
		{d.OS.SMBios != nil, "<smbios>"},
		{d.OS.Init != "", "<init>"},
		{d.LaunchSecurity != nil, "<launchSecurity>"},
		{d.KeyWrap != nil, "<keywrap>"},
		{d.QEMUCommandline != nil || d.QEMUOverride != nil || d.QEMUCapabilities != nil, "qemu: namespace elements"},
		{d.CPU != nil && d.CPU.Numa != nil, "guest NUMA topology"},
		{len(dev.Filesystems) > 0, "<filesystem> devices"},
		{len(dev.Smartcards) > 0, "<smartcard> devices"},
		{len(dev.Parallels) > 0, "<parallel> devices"},
		{len(dev.Hostdevs) > 0, "<hostdev> devices"},
		{len(dev.Hubs) > 0, "<hub> devices"},
		{dev.NVRAM != nil, "<nvram> device"},
		{len(dev.Shmems) > 0, "<shmem> devices"},
		{len(dev.Memorydevs) > 0, "<memory> devices"},
		{dev.IOMMU != nil || len(dev.IOMMUs) > 0, "<iommu> device"},
		{dev.VSock != nil, "<vsock> device"},
		{len(dev.Crypto) > 0, "<crypto> devices"},
		{dev.PStore != nil, "<pstore> device"},
		{d.OnReboot == "destroy", "on_reboot 'destroy'"},
	}
	for _, c := range checks {
		if c.bad {
			return unsupported("%s in domain '%s'", c.what, d.Name)
		}
	}
	if f := d.Features; f != nil {
		if f.APIC != nil && f.APIC.EOI != "" {
			return unsupported("<apic eoi='%s'>", f.APIC.EOI)
		}
		other := f.HAP != nil || f.Viridian != nil || f.PrivNet != nil || f.HyperV != nil ||
			f.KVM != nil || f.Xen != nil || f.PVSpinlock != nil || f.PMU != nil || f.GIC != nil ||
			f.SMM != nil || f.IOAPIC != nil || f.HPT != nil || f.HTM != nil || f.NestedHV != nil ||
			f.Capabilities != nil || f.VMCoreInfo != nil || f.MSRS != nil || f.CCFAssist != nil ||
			f.CFPC != nil || f.SBBC != nil || f.IBS != nil || f.TCG != nil || f.AsyncTeardown != nil ||
			f.RAS != nil || f.PS2 != nil || f.AIA != nil || f.Virtualization != nil
		if other {
			return unsupported("<features> other than acpi, apic, pae and vmport in domain '%s'", d.Name)
		}
	}
	return nil
}

func (b *builder) header() error {
	d := b.dom
	if d.Name == "" {
		return unsupported("domain has no name")
	}
	// QEMU's option parser treats ',' as a separator; libvirt doubles it.
	b.arg("-name", "guest="+strings.ReplaceAll(d.Name, ",", ",,")+",debug-threads=on")
	b.arg("-S")
	b.arg("-object", newProps().
		add("qom-type", "secret").
		add("id", "masterKey0").
		add("format", "raw").
		add("file", filepath.Join(b.opts.DomainDir, "master-key.aes")).String())
	return nil
}

func (b *builder) machine() error {
	d := b.dom
	var sb strings.Builder
	sb.WriteString(d.OS.Type.Machine)
	// usb=off: libvirt creates every USB controller itself.
	sb.WriteString(",usb=off")
	if f := d.Features; f != nil && f.VMPort != nil {
		switch f.VMPort.State {
		case "on", "off":
			sb.WriteString(",vmport=" + f.VMPort.State)
		default:
			return unsupported("vmport state '%s'", f.VMPort.State)
		}
	}
	dump := "off"
	if d.Memory != nil && d.Memory.DumpCore != "" {
		dump = d.Memory.DumpCore
	}
	sb.WriteString(",dump-guest-core=" + dump)
	if d.MemoryBacking != nil && d.MemoryBacking.MemoryNosharepages != nil {
		sb.WriteString(",mem-merge=off") // no KSM for this guest
	}
	// Guest RAM is an explicit backend object so that its RAM block name
	// (pc.ram) matches on both migration ends.
	sb.WriteString(",memory-backend=pc.ram")
	b.arg("-machine", sb.String())
	if b.opts.KVM {
		b.arg("-accel", "kvm")
	} else {
		b.arg("-accel", "tcg")
	}
	return nil
}

// cpuFeatureNames maps libvirt's cpu_map feature names to the spelling
// QEMU 7.2 documents (virQEMUCapsCPUFeatureToQEMU); the old spellings are
// deprecated aliases in QEMU.
var cpuFeatureNames = map[string]string{
	"cmp_legacy":    "cmp-legacy",
	"ds_cpl":        "ds-cpl",
	"fxsr_opt":      "fxsr-opt",
	"kvm_pv_eoi":    "kvm-pv-eoi",
	"kvm_pv_unhalt": "kvm-pv-unhalt",
	"lahf_lm":       "lahf-lm",
	"nodeid_msr":    "nodeid-msr",
	"pclmuldq":      "pclmulqdq",
	"perfctr_core":  "perfctr-core",
	"perfctr_nb":    "perfctr-nb",
	"tsc_adjust":    "tsc-adjust",
}

func (b *builder) cpu() error {
	c := b.dom.CPU
	if c == nil {
		return nil
	}
	if c.Cache != nil || c.MaxPhysAddr != nil || c.Vendor != "" || (c.Model != nil && c.Model.VendorID != "") {
		return unsupported("<cpu> cache, maxphysaddr or vendor settings")
	}
	var sb strings.Builder
	switch c.Mode {
	case "", "custom":
		if c.Model == nil || c.Model.Value == "" {
			if len(c.Features) > 0 {
				return unsupported("CPU features without a CPU model")
			}
			return nil // only topology
		}
		sb.WriteString(c.Model.Value)
	case "host-passthrough":
		sb.WriteString("host")
		if c.Migratable == "off" {
			sb.WriteString(",migratable=off")
		} else {
			sb.WriteString(",migratable=on")
		}
	default:
		// host-model and maximum are expanded by libvirt at start time
		// from host capabilities; the caller must pass the expanded CPU.
		return unsupported("CPU mode '%s' (pass the expanded guest CPU)", c.Mode)
	}
	for _, f := range c.Features {
		name := f.Name
		if q, ok := cpuFeatureNames[name]; ok {
			name = q
		}
		switch f.Policy {
		case "force", "require", "":
			sb.WriteString("," + name + "=on")
		case "disable", "forbid":
			sb.WriteString("," + name + "=off")
		case "optional":
			// libvirt leaves optional features to the model's default.
		default:
			return unsupported("CPU feature policy '%s'", f.Policy)
		}
	}
	b.arg("-cpu", sb.String())
	return nil
}

// memoryKiB converts a libvirt scaled integer to KiB (virScaleInteger).
func memoryKiB(value uint, unit string) (uint64, error) {
	v := uint64(value)
	var mul uint64
	switch strings.ToLower(unit) {
	case "b", "bytes":
		return (v + 1023) / 1024, nil
	case "", "k", "kib":
		mul = 1
	case "kb":
		return (v*1000 + 1023) / 1024, nil
	case "m", "mib":
		mul = 1024
	case "mb":
		return (v*1000*1000 + 1023) / 1024, nil
	case "g", "gib":
		mul = 1024 * 1024
	case "gb":
		return (v*1000*1000*1000 + 1023) / 1024, nil
	case "t", "tib":
		mul = 1024 * 1024 * 1024
	default:
		return 0, unsupported("memory unit '%s'", unit)
	}
	return v * mul, nil
}

func (b *builder) memory() error {
	d := b.dom
	if d.Memory == nil || d.Memory.Value == 0 {
		return unsupported("domain '%s' has no memory size", d.Name)
	}
	kib, err := memoryKiB(d.Memory.Value, d.Memory.Unit)
	if err != nil {
		return err
	}
	// qemuDomainAlignMemorySizes: x86 guest RAM is rounded up to 1 MiB.
	mib := (kib + 1023) / 1024
	b.arg("-m", fmt.Sprint(mib))
	b.arg("-object", newProps().
		add("qom-type", "memory-backend-ram").
		add("id", "pc.ram").
		add("size", mib*1024*1024).String())
	b.arg("-overcommit", "mem-lock=off")
	return nil
}

func (b *builder) smp() error {
	d := b.dom
	maxv := uint(1)
	cur := uint(0)
	if d.VCPU != nil {
		if d.VCPU.Value > 0 {
			maxv = d.VCPU.Value
		}
		cur = d.VCPU.Current
	}
	if d.VCPUs != nil {
		return unsupported("per-vCPU <vcpus> settings")
	}
	if cur == 0 {
		cur = maxv
	}
	s := fmt.Sprint(cur)
	if cur != maxv {
		s += fmt.Sprintf(",maxcpus=%d", maxv)
	}
	if d.CPU != nil && d.CPU.Topology != nil && d.CPU.Topology.Sockets > 0 {
		t := d.CPU.Topology
		if t.Clusters > 1 {
			return unsupported("CPU topology with clusters")
		}
		dies := t.Dies
		if dies == 0 {
			dies = 1
		}
		if uint(t.Sockets*dies*t.Cores*t.Threads) != maxv {
			return unsupported("CPU topology %d sockets x %d dies x %d cores x %d threads does not match %d vCPUs",
				t.Sockets, dies, t.Cores, t.Threads, maxv)
		}
		// QEMU 7.2 has the SMP 'dies' option, so libvirt always spells
		// it out when a topology is given.
		s += fmt.Sprintf(",sockets=%d,dies=%d,cores=%d,threads=%d", t.Sockets, dies, t.Cores, t.Threads)
	} else {
		s += fmt.Sprintf(",sockets=%d,cores=1,threads=1", maxv)
	}
	b.arg("-smp", s)
	return nil
}

func (b *builder) misc() error {
	d := b.dom
	if d.UUID == "" {
		return unsupported("domain '%s' has no UUID", d.Name)
	}
	b.arg("-uuid", d.UUID)
	if len(d.Devices.Graphics) == 0 {
		b.arg("-display", "none")
	}
	b.arg("-no-user-config", "-nodefaults")
	b.arg("-chardev", fmt.Sprintf("socket,id=charmonitor,fd=%d,server=on,wait=off", b.opts.MonitorFD))
	b.arg("-mon", "chardev=charmonitor,id=monitor,mode=control")
	return nil
}

func (b *builder) clock() error {
	c := b.dom.Clock
	base := "utc"
	var timers []libvirtxml.DomainTimer
	if c != nil {
		switch c.Offset {
		case "", "utc":
		case "localtime":
			base = "localtime"
		default:
			return unsupported("clock offset '%s'", c.Offset)
		}
		if c.Adjustment != "" || c.Basis != "" || c.TimeZone != "" {
			return unsupported("clock adjustment/timezone")
		}
		timers = c.Timer
	}
	rtc := "base=" + base
	var extra []string
	for _, t := range timers {
		switch t.Name {
		case "rtc":
			if t.Track != "" || t.CatchUp != nil || t.Present == "no" {
				return unsupported("rtc timer track/catchup/present settings")
			}
			switch t.TickPolicy {
			case "":
			case "catchup":
				rtc += ",driftfix=slew"
			default:
				return unsupported("rtc timer tickpolicy '%s'", t.TickPolicy)
			}
		case "pit":
			if t.Present == "no" || t.CatchUp != nil {
				return unsupported("pit timer present/catchup settings")
			}
			switch t.TickPolicy {
			case "":
			case "delay":
				extra = append(extra, "-global", "kvm-pit.lost_tick_policy=delay")
			default:
				return unsupported("pit timer tickpolicy '%s'", t.TickPolicy)
			}
		case "hpet":
			if t.TickPolicy != "" {
				return unsupported("hpet timer tickpolicy")
			}
			if t.Present == "no" {
				extra = append(extra, "-no-hpet")
			}
		default:
			return unsupported("timer '%s'", t.Name)
		}
	}
	b.arg("-rtc", rtc)
	b.arg(extra...)
	return nil
}

func (b *builder) pm() error {
	d := b.dom
	// libvirt keeps QEMU alive on guest poweroff so it can report the
	// shutdown reason and honour on_poweroff itself.
	b.arg("-no-shutdown")
	if d.Features == nil || d.Features.ACPI == nil {
		b.arg("-no-acpi")
	}
	if d.PM != nil {
		dev := "PIIX4_PM"
		if b.q35 {
			dev = "ICH9-LPC"
		}
		for _, p := range []struct {
			pol  *libvirtxml.DomainPMPolicy
			prop string
		}{{d.PM.SuspendToMem, "disable_s3"}, {d.PM.SuspendToDisk, "disable_s4"}} {
			if p.pol == nil {
				continue
			}
			v := "1"
			if p.pol.Enabled == "yes" {
				v = "0"
			}
			b.arg("-global", dev+"."+p.prop+"="+v)
		}
	}
	return nil
}

func (b *builder) boot() error {
	os := b.dom.OS
	var opts []string
	if os.BootMenu != nil && os.BootMenu.Enable != "" {
		if os.BootMenu.Enable == "yes" {
			opts = append(opts, "menu=on")
		} else {
			opts = append(opts, "menu=off")
		}
	}
	if os.BIOS != nil {
		if os.BIOS.UseSerial != "" {
			return unsupported("<bios useserial>")
		}
		if os.BIOS.RebootTimeout != nil {
			opts = append(opts, fmt.Sprintf("reboot-timeout=%d", *os.BIOS.RebootTimeout))
		}
	}
	if os.BootMenu != nil && os.BootMenu.Timeout != "" {
		opts = append(opts, "splash-time="+os.BootMenu.Timeout)
	}
	opts = append(opts, "strict=on")
	b.arg("-boot", strings.Join(opts, ","))
	if os.Kernel != "" {
		b.arg("-kernel", os.Kernel)
	}
	if os.Initrd != "" {
		b.arg("-initrd", os.Initrd)
	}
	if os.Cmdline != "" {
		b.arg("-append", os.Cmdline)
	}
	if os.DTB != "" {
		b.arg("-dtb", os.DTB)
	}
	return nil
}

func (b *builder) incoming() error {
	if b.opts.Incoming != "" {
		b.arg("-incoming", b.opts.Incoming)
	}
	return nil
}

func (b *builder) trailer() error {
	b.arg("-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny")
	// qemuBuildPanicCommandLine runs after the sandbox option.
	for _, p := range b.dom.Devices.Panics {
		if p.Model != "" && p.Model != "isa" {
			return unsupported("panic model '%s'", p.Model)
		}
		pp := newProps().add("driver", "pvpanic")
		if p.Address != nil && p.Address.ISA != nil && p.Address.ISA.IOBase != nil {
			pp.add("ioport", *p.Address.ISA.IOBase)
		}
		b.device(pp)
	}
	b.arg("-msg", "timestamp=on")
	return nil
}

// String renders the command the way libvirt logs it (and its test data
// stores it): environment first, one argument per line, arguments quoted
// for a POSIX shell when they need it.
func (c *Command) String() string {
	var parts []string
	for _, e := range c.Env {
		k, v, _ := strings.Cut(e, "=")
		parts = append(parts, k+"="+shellQuote(v))
	}
	parts = append(parts, shellQuote(c.Path))
	// Like virCommandToString, an option and its value share a line.
	for i := 0; i < len(c.Args); i++ {
		line := shellQuote(c.Args[i])
		if strings.HasPrefix(c.Args[i], "-") && i+1 < len(c.Args) && !strings.HasPrefix(c.Args[i+1], "-") {
			i++
			line += " " + shellQuote(c.Args[i])
		}
		parts = append(parts, line)
	}
	return strings.Join(parts, " \\\n") + "\n"
}

// shellQuote follows virBufferEscapeShell: quote only when a character
// would mean something to the shell.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if !strings.ContainsAny(s, "\r\t\n !\"#$&'()*;<>?[\\]^`{|}~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ExtraFiles lays out the descriptors QEMU expects for exec.Cmd.ExtraFiles
// (entry i becomes descriptor 3+i): the given fixed files (normally the
// monitor socket at Options.MonitorFD) plus every PassedFile, opened the
// way libvirt opens it. The returned closer closes what ExtraFiles opened;
// call it once QEMU has started.
func (c *Command) ExtraFiles(fixed map[int]*os.File) ([]*os.File, func(), error) {
	maxFD := 2
	byFD := map[int]*os.File{}
	for fd, f := range fixed {
		byFD[fd] = f
		maxFD = max(maxFD, fd)
	}
	var opened []*os.File
	closeAll := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	for _, pf := range c.Files {
		if _, dup := byFD[pf.FD]; dup || pf.FD < 3 {
			closeAll()
			return nil, nil, fmt.Errorf("descriptor %d for %s is already taken", pf.FD, pf.Path)
		}
		if pf.Listen {
			f, err := listenUnixFile(pf.Path)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("socket %s for %s: %w", pf.Path, pf.Opaque, err)
			}
			opened = append(opened, f)
			byFD[pf.FD] = f
			maxFD = max(maxFD, pf.FD)
			continue
		}
		flags := os.O_WRONLY | os.O_CREATE
		if pf.Append {
			flags |= os.O_APPEND
		} else {
			flags |= os.O_TRUNC
		}
		f, err := os.OpenFile(pf.Path, flags, 0o600)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("opening %s for %s: %w", pf.Path, pf.Opaque, err)
		}
		opened = append(opened, f)
		byFD[pf.FD] = f
		maxFD = max(maxFD, pf.FD)
	}
	files := make([]*os.File, maxFD-2)
	for fd, f := range byFD {
		if fd >= 3 {
			files[fd-3] = f
		}
	}
	return files, closeAll, nil
}

// listenUnixFile creates a listening unix socket at path (replacing a
// stale one) and returns its descriptor as a file.
func listenUnixFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	f, err := ln.File()
	ln.Close()
	return f, err
}
