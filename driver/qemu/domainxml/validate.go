package domainxml

import (
	"fmt"
	"os"
	"slices"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
)

// unsupported builds the error for configuration outside govirtd's subset.
// libvirt's QEMU driver raises VIR_ERR_CONFIG_UNSUPPORTED from
// VIR_FROM_QEMU for configuration it cannot run (qemu_validate.c), so
// govirtd does the same.
func unsupported(format string, args ...any) error {
	return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, format, args...)
}

// absentRules lists elements govirtd does not implement at all. Each entry
// names the element as the error will; present reports whether the domain
// uses it.
var absentRules = []struct {
	element string
	present func(d *libvirtxml.Domain) bool
}{
	{"<maxMemory>", func(d *libvirtxml.Domain) bool { return d.MaximumMemory != nil }},
	{"<blkiotune>", func(d *libvirtxml.Domain) bool { return d.BlockIOTune != nil }},
	{"<memtune>", func(d *libvirtxml.Domain) bool { return d.MemoryTune != nil }},
	{"<vcpus>", func(d *libvirtxml.Domain) bool { return d.VCPUs != nil }},
	{"<numatune>", func(d *libvirtxml.Domain) bool { return d.NUMATune != nil }},
	// A resource partition is only a cgroup placement, which libvirt's
	// migratable XML carries (<partition>/machine</partition>): accepted,
	// and without cgroups it changes nothing. Fibre channel app ids are not.
	{"<resource><fibrechannel>", func(d *libvirtxml.Domain) bool { return d.Resource != nil && d.Resource.FibreChannel != nil }},
	{"<sysinfo>", func(d *libvirtxml.Domain) bool { return len(d.SysInfo) > 0 }},
	{"<bootloader>", func(d *libvirtxml.Domain) bool { return d.Bootloader != "" }},
	{"<idmap>", func(d *libvirtxml.Domain) bool { return d.IDMap != nil }},
	{"<on_lockfailure>", func(d *libvirtxml.Domain) bool { return d.OnLockFailure != "" }},
	{"<perf>", func(d *libvirtxml.Domain) bool { return d.Perf != nil }},
	{"<keywrap>", func(d *libvirtxml.Domain) bool { return d.KeyWrap != nil }},
	{"<launchSecurity>", func(d *libvirtxml.Domain) bool { return d.LaunchSecurity != nil }},
	{"<qemu:commandline>", func(d *libvirtxml.Domain) bool { return d.QEMUCommandline != nil }},
	{"<qemu:capabilities>", func(d *libvirtxml.Domain) bool { return d.QEMUCapabilities != nil }},
	{"<qemu:override>", func(d *libvirtxml.Domain) bool { return d.QEMUOverride != nil }},
	{"<os><loader>", func(d *libvirtxml.Domain) bool { return d.OS != nil && d.OS.Loader != nil }},
	{"<os><nvram>", func(d *libvirtxml.Domain) bool { return d.OS != nil && d.OS.NVRam != nil }},
	{"<os firmware>", func(d *libvirtxml.Domain) bool {
		return d.OS != nil && (d.OS.Firmware != "" || d.OS.FirmwareInfo != nil)
	}},
	{"<os><dtb>", func(d *libvirtxml.Domain) bool { return d.OS != nil && d.OS.DTB != "" }},
	{"<os><smbios>", func(d *libvirtxml.Domain) bool { return d.OS != nil && d.OS.SMBios != nil }},
	{"<cpu><numa>", func(d *libvirtxml.Domain) bool { return d.CPU != nil && d.CPU.Numa != nil }},
	{"<devices><lease>", func(d *libvirtxml.Domain) bool { return dev(d).Leases != nil }},
	{"<devices><filesystem>", func(d *libvirtxml.Domain) bool { return dev(d).Filesystems != nil }},
	{"<devices><smartcard>", func(d *libvirtxml.Domain) bool { return dev(d).Smartcards != nil }},
	{"<devices><parallel>", func(d *libvirtxml.Domain) bool { return dev(d).Parallels != nil }},
	{"<devices><hostdev>", func(d *libvirtxml.Domain) bool { return dev(d).Hostdevs != nil }},
	{"<devices><redirfilter>", func(d *libvirtxml.Domain) bool { return dev(d).RedirFilters != nil }},
	{"<devices><hub>", func(d *libvirtxml.Domain) bool { return dev(d).Hubs != nil }},
	{"<devices><nvram>", func(d *libvirtxml.Domain) bool { return dev(d).NVRAM != nil }},
	{"<devices><shmem>", func(d *libvirtxml.Domain) bool { return dev(d).Shmems != nil }},
	{"<devices><memory>", func(d *libvirtxml.Domain) bool { return dev(d).Memorydevs != nil }},
	{"<devices><iommu>", func(d *libvirtxml.Domain) bool { return dev(d).IOMMU != nil || dev(d).IOMMUs != nil }},
	{"<devices><vsock>", func(d *libvirtxml.Domain) bool { return dev(d).VSock != nil }},
	{"<devices><crypto>", func(d *libvirtxml.Domain) bool { return dev(d).Crypto != nil }},
	{"<devices><pstore>", func(d *libvirtxml.Domain) bool { return dev(d).PStore != nil }},
}

var emptyDevices libvirtxml.DomainDeviceList

func dev(d *libvirtxml.Domain) *libvirtxml.DomainDeviceList {
	if d.Devices == nil {
		return &emptyDevices
	}
	return d.Devices
}

// Allowed values of enumerated attributes; "" means the attribute may be
// left out (libvirt then applies its default).
var (
	allowedArch          = []string{"", "x86_64", "i686"}
	allowedLifecycle     = []string{"", "destroy", "restart"}
	allowedClockOffset   = []string{"", "utc", "localtime"}
	allowedCPUMode       = []string{"", "custom", "host-model", "host-passthrough", "maximum"}
	allowedDiskDevice    = []string{"", "disk", "cdrom", "floppy"}
	allowedDiskFormat    = []string{"", "raw", "qcow2"}
	allowedDiskBus       = []string{"virtio", "ide", "sata", "fdc"}
	allowedUSBModel      = []string{"", "piix3-uhci", "qemu-xhci", "nec-xhci", "ich9-ehci1", "ich9-uhci1", "ich9-uhci2", "ich9-uhci3", "none"}
	allowedPCIModel      = []string{"pci-root", "pcie-root", "pcie-root-port"}
	allowedNetModel      = []string{"", "virtio", "e1000", "e1000e", "rtl8139"}
	allowedInputType     = []string{"mouse", "keyboard", "tablet"}
	allowedInputBus      = []string{"", "ps2", "usb"}
	allowedVideoModel    = []string{"", "vga", "cirrus", "virtio", "qxl", "none"}
	allowedBalloonModel  = []string{"virtio", "none"}
	allowedSecLabelModel = []string{"", "dac", "none"}
)

func checkEnum(what, value string, allowed []string) error {
	if !slices.Contains(allowed, value) {
		return unsupported("%s '%s' is not supported by govirtd", what, value)
	}
	return nil
}

// Validate rejects anything outside the subset govirtd can run and migrate
// faithfully. It runs on the parsed input, before ApplyDefaults.
func Validate(d *libvirtxml.Domain, host Host) error {
	switch d.Type {
	case "qemu":
	case "kvm":
		if !host.KVM() {
			return unsupported("domain type 'kvm' is not available on this host")
		}
	default:
		return unsupported("domain type '%s' is not supported by govirtd", d.Type)
	}
	for _, r := range absentRules {
		if r.present(d) {
			return unsupported("element %s is not supported by govirtd", r.element)
		}
	}
	if err := validateOS(d, host); err != nil {
		return err
	}
	if err := validateCPU(d); err != nil {
		return err
	}
	if d.Clock != nil {
		if err := checkEnum("<clock offset>", d.Clock.Offset, allowedClockOffset); err != nil {
			return err
		}
	}
	for _, lc := range []struct{ el, v string }{{"<on_poweroff>", d.OnPoweroff}, {"<on_reboot>", d.OnReboot}, {"<on_crash>", d.OnCrash}} {
		if err := checkEnum(lc.el, lc.v, allowedLifecycle); err != nil {
			return err
		}
	}
	if d.VCPU != nil && d.VCPU.Placement != "" && d.VCPU.Placement != "static" {
		return unsupported("<vcpu placement> '%s' is not supported by govirtd", d.VCPU.Placement)
	}
	for _, s := range d.SecLabel {
		if s.Type != "none" && s.Type != "dynamic" {
			return unsupported("<seclabel type> '%s' is not supported by govirtd", s.Type)
		}
		if err := checkEnum("<seclabel model>", s.Model, allowedSecLabelModel); err != nil {
			return err
		}
	}
	if d.Features != nil {
		f := *d.Features
		f.ACPI, f.APIC, f.PAE, f.VMPort = nil, nil, nil, nil
		if f != (libvirtxml.DomainFeatureList{}) {
			return unsupported("element <features> may only hold <acpi>, <apic>, <pae> and <vmport> in govirtd")
		}
	}
	return validateDevices(d, host)
}

func validateOS(d *libvirtxml.Domain, host Host) error {
	if d.OS == nil || d.OS.Type == nil {
		return nil
	}
	t := d.OS.Type
	if t.Type != "" && t.Type != "hvm" {
		return unsupported("<os><type> '%s' is not supported by govirtd", t.Type)
	}
	if err := checkEnum("<os><type arch>", t.Arch, allowedArch); err != nil {
		return err
	}
	arch := archOf(d)
	if t.Machine != "" {
		if _, ok := host.CanonicalMachine(arch, t.Machine); !ok {
			return unsupported("<os><type machine> '%s' is not available for arch '%s'", t.Machine, arch)
		}
	}
	for _, b := range d.OS.BootDevices {
		if err := checkEnum("<os><boot dev>", b.Dev, []string{"hd", "cdrom", "network", "fd"}); err != nil {
			return err
		}
	}
	return nil
}

func validateCPU(d *libvirtxml.Domain) error {
	if d.CPU == nil {
		return nil
	}
	if err := checkEnum("<cpu mode>", d.CPU.Mode, allowedCPUMode); err != nil {
		return err
	}
	if d.CPU.Mode == "host-passthrough" && d.Type != "kvm" {
		return unsupported("<cpu mode> 'host-passthrough' needs domain type 'kvm'")
	}
	return nil
}

func validateDevices(d *libvirtxml.Domain, host Host) error {
	dv := dev(d)
	if dv.Emulator != "" {
		st, err := os.Stat(dv.Emulator)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			// libvirt: virQEMUCapsCacheLookup fails with this wording.
			return compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "Cannot find emulator '%s'", dv.Emulator)
		}
	}
	q35 := isQ35(machineOf(d, host))
	for _, disk := range dv.Disks {
		if disk.Source != nil && (disk.Source.Network != nil || disk.Source.Dir != nil || disk.Source.NVME != nil || disk.Source.VHostUser != nil) {
			return unsupported("<disk type> other than 'file', 'block' and 'volume' is not supported by govirtd")
		}
		if err := checkVolumeSource(&disk); err != nil {
			return err
		}
		if err := checkEnum("<disk device>", disk.Device, allowedDiskDevice); err != nil {
			return err
		}
		if disk.Target == nil || disk.Target.Dev == "" {
			return compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "missing target information for device %s", diskSourcePath(&disk))
		}
		bus := diskBus(&disk)
		if err := checkEnum("<disk><target bus>", bus, allowedDiskBus); err != nil {
			return err
		}
		if bus == "ide" && q35 {
			return unsupported("IDE controllers are unsupported for this QEMU binary or machine type")
		}
		if disk.Driver != nil {
			if disk.Driver.Name != "" && disk.Driver.Name != "qemu" {
				return unsupported("<disk><driver name> '%s' is not supported by govirtd", disk.Driver.Name)
			}
			if err := checkEnum("<disk><driver type>", disk.Driver.Type, allowedDiskFormat); err != nil {
				return err
			}
			if err := validateDiskDriver(d, &disk); err != nil {
				return err
			}
		}
		if err := validateDriveAddress(&disk, bus); err != nil {
			return err
		}
		if (disk.Device == "floppy") != (bus == "fdc") {
			return unsupported("disk %s: floppy disks need bus 'fdc', and bus 'fdc' holds only floppies", disk.Target.Dev)
		}
		if bus == "fdc" && q35 {
			return unsupported("disk %s: q35 machines have no floppy controller", disk.Target.Dev)
		}
		// An empty <backingStore/> only says the image has no backing file:
		// libvirt writes it in the live XML of every disk it probed, so a
		// guest migrating from libvirtd carries it. A chain is read from
		// the images at start (PrepareLive); one written in the
		// definition is not supported.
		if bs := disk.BackingStore; bs != nil && !EmptyBackingStore(bs) {
			return unsupported("disk %s: a backing chain in the definition (<backingStore> with a source) is not supported by govirtd: the chain is read from the image", disk.Target.Dev)
		}
		if disk.IOTune != nil || disk.Encryption != nil || disk.Auth != nil {
			return unsupported("disk %s: <iotune>, <encryption> and <auth> are not supported by govirtd", disk.Target.Dev)
		}
	}
	for _, c := range dv.Controllers {
		var err error
		switch c.Type {
		case "usb":
			err = checkEnum("<controller type='usb'> model", c.Model, allowedUSBModel)
		case "pci":
			err = checkEnum("<controller type='pci'> model", c.Model, allowedPCIModel)
			if err == nil && (c.Model == "pcie-root-port" || c.Model == "pcie-root") != q35 {
				err = unsupported("<controller type='pci'> model '%s' does not fit machine '%s'", c.Model, machineOf(d, host))
			}
		case "ide":
			if q35 {
				err = unsupported("IDE controllers are unsupported for this QEMU binary or machine type")
			}
		case "sata", "virtio-serial", "fdc":
		default:
			err = unsupported("<controller type> '%s' is not supported by govirtd", c.Type)
		}
		if err != nil {
			return err
		}
	}
	if err := validateUSBUse(dv); err != nil {
		return err
	}
	for _, n := range dv.Interfaces {
		if n.Source == nil || (n.Source.User == nil && n.Source.Network == nil && n.Source.Bridge == nil && n.Source.Ethernet == nil) {
			return unsupported("<interface type> other than 'user', 'network', 'bridge' or 'ethernet' is not supported by govirtd")
		}
		if n.Source.Network != nil && n.Source.Network.Network == "" {
			return compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "No <source> 'network' attribute specified with <interface type='network'/>")
		}
		if n.Source.Bridge != nil && n.Source.Bridge.Bridge == "" {
			return compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "No <source> 'bridge' attribute specified with <interface type='bridge'/>")
		}
		model := ""
		if n.Model != nil {
			model = n.Model.Type
		}
		if err := checkEnum("<interface><model type>", model, allowedNetModel); err != nil {
			return err
		}
		// Conventional PCI NICs on q35 need a pcie-to-pci-bridge, which
		// govirtd does not create.
		if q35 && model != "virtio" && model != "e1000e" {
			return unsupported("<interface><model type> '%s' on q35 is not supported by govirtd (use 'virtio' or 'e1000e')", model)
		}
	}
	for _, s := range dv.Serials {
		if err := checkChardev("<serial>", s.Source); err != nil {
			return err
		}
		if s.Target != nil && s.Target.Type != "" && s.Target.Type != "isa-serial" {
			return unsupported("<serial><target type> '%s' is not supported by govirtd", s.Target.Type)
		}
	}
	for _, c := range dv.Consoles {
		if err := checkChardev("<console>", c.Source); err != nil {
			return err
		}
		if c.Target != nil && c.Target.Type != "" && c.Target.Type != "serial" {
			return unsupported("<console><target type> '%s' is not supported by govirtd", c.Target.Type)
		}
	}
	for _, in := range dv.Inputs {
		if err := checkEnum("<input type>", in.Type, allowedInputType); err != nil {
			return err
		}
		if err := checkEnum("<input bus>", in.Bus, allowedInputBus); err != nil {
			return err
		}
	}
	for i := range dv.Graphics {
		if err := validateGraphics(&dv.Graphics[i]); err != nil {
			return err
		}
	}
	for _, v := range dv.Videos {
		if err := checkEnum("<video><model type>", v.Model.Type, allowedVideoModel); err != nil {
			return err
		}
	}
	if b := dv.MemBalloon; b != nil {
		if err := checkEnum("<memballoon model>", b.Model, allowedBalloonModel); err != nil {
			return err
		}
	}
	for _, a := range dv.Audios {
		if a.None == nil && a.SPICE == nil {
			return unsupported("<audio type> other than 'none' and 'spice' is not supported by govirtd")
		}
	}
	return validateOtherDevices(d, q35)
}

func checkChardev(el string, src *libvirtxml.DomainChardevSource) error {
	switch {
	case src == nil, src.Pty != nil:
		return nil
	case src.File != nil:
		if src.File.Path == "" {
			return compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "Missing source path attribute for char device")
		}
		return nil
	}
	return unsupported("%s type other than 'pty' and 'file' is not supported by govirtd", el)
}

func diskBus(disk *libvirtxml.DomainDisk) string {
	if disk.Target.Bus != "" {
		return disk.Target.Bus
	}
	// virDomainDiskDefParseXML guesses the bus from the device name prefix.
	switch disk.Target.Dev[:min(2, len(disk.Target.Dev))] {
	case "hd":
		return "ide"
	case "sd":
		return "scsi"
	case "vd":
		return "virtio"
	case "fd":
		return "fdc"
	}
	return fmt.Sprintf("unknown (%s)", disk.Target.Dev)
}

func diskSourcePath(disk *libvirtxml.DomainDisk) string {
	if disk.Source != nil && disk.Source.File != nil {
		return disk.Source.File.File
	}
	return "<null>"
}

// EmptyBackingStore reports whether a <backingStore> element is the empty
// one (<backingStore/>: "this image has no backing file"). libvirtxml
// fills in an empty file source when it parses it, so a nil check is not
// enough.
func EmptyBackingStore(bs *libvirtxml.DomainDiskBackingStore) bool {
	if bs == nil {
		return true
	}
	if bs.Format != nil || bs.BackingStore != nil {
		return false
	}
	src := bs.Source
	return src == nil || ((src.File == nil || src.File.File == "") && src.Block == nil && src.Network == nil &&
		src.Dir == nil && src.Volume == nil && src.NVME == nil && src.VHostUser == nil && src.VHostVDPA == nil && src.Ctl == nil)
}
