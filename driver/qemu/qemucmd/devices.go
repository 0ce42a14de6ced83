package qemucmd

import (
	"fmt"
	"net"

	"libvirt.org/go/libvirtxml"
)

// pciBusAlias names the QEMU bus of PCI bus number n: the alias of the
// PCI controller with that index, or the machine's root bus.
func (b *builder) pciBusAlias(n uint) (string, error) {
	for i := range b.dom.Devices.Controllers {
		c := &b.dom.Devices.Controllers[i]
		if c.Type == "pci" && c.Index != nil && *c.Index == n && c.Alias != nil {
			return c.Alias.Name, nil
		}
	}
	if n == 0 {
		if b.q35 {
			return "pcie.0", nil
		}
		return "pci.0", nil
	}
	return "", unsupported("no PCI controller with index %d", n)
}

// addPCI appends libvirt's bus/addr properties (qemuBuildDeviceAddressProps)
// for a PCI address; what names a device refers to must exist, since a
// device without its libvirt address changes the guest's PCI layout.
func (b *builder) addPCI(p *props, addr *libvirtxml.DomainAddress, what string) error {
	if addr == nil || addr.PCI == nil || addr.PCI.Slot == nil {
		return unsupported("%s has no PCI address (addresses are assigned at define time)", what)
	}
	a := addr.PCI
	if uval(a.Domain) != 0 {
		return unsupported("%s: PCI domain %d", what, uval(a.Domain))
	}
	bus, err := b.pciBusAlias(uval(a.Bus))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	p.add("bus", bus)
	if a.MultiFunction == "on" {
		p.add("multifunction", true)
	}
	s := fmt.Sprintf("0x%x", *a.Slot)
	if f := uval(a.Function); f != 0 {
		s += fmt.Sprintf(".0x%x", f)
	}
	p.add("addr", s)
	return nil
}

func alias(a *libvirtxml.DomainAlias) string {
	if a == nil {
		return ""
	}
	return a.Name
}

// controllerOrder is the order qemuBuildControllersCommandLine emits
// controller types in.
var controllerOrder = []string{"pci", "usb", "scsi", "ide", "sata", "fdc", "virtio-serial", "isa"}

func (b *builder) controllers() error {
	ctrls := b.dom.Devices.Controllers
	for _, c := range ctrls {
		known := false
		for _, t := range controllerOrder {
			known = known || c.Type == t
		}
		if !known {
			return unsupported("controller type '%s'", c.Type)
		}
	}
	for _, t := range controllerOrder {
		for i := range ctrls {
			c := &ctrls[i]
			if c.Type != t {
				continue
			}
			if err := b.controller(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *builder) controller(c *libvirtxml.DomainController) error {
	idx := uval(c.Index)
	what := fmt.Sprintf("%s controller %d", c.Type, idx)
	if c.Driver != nil {
		return unsupported("%s: <driver> settings", what)
	}
	switch c.Type {
	case "pci":
		switch c.Model {
		case "pci-root", "pcie-root":
			return nil // the machine's own root bus
		case "pcie-root-port":
			if c.PCI != nil && c.PCI.Model != nil && c.PCI.Model.Name != "" && c.PCI.Model.Name != "pcie-root-port" {
				return unsupported("%s: model name '%s'", what, c.PCI.Model.Name)
			}
			if c.PCI == nil || c.PCI.Target == nil || c.PCI.Target.Port == nil || c.PCI.Target.Chassis == nil {
				return unsupported("%s: missing target chassis/port", what)
			}
			p := newProps().add("driver", "pcie-root-port").
				add("port", *c.PCI.Target.Port).
				add("chassis", *c.PCI.Target.Chassis).
				add("id", alias(c.Alias))
			if err := b.addPCI(p, c.Address, what); err != nil {
				return err
			}
			b.device(p)
			return nil
		case "pci-bridge":
			if c.PCI == nil || c.PCI.Target == nil || c.PCI.Target.ChassisNr == nil {
				return unsupported("%s: missing target chassisNr", what)
			}
			p := newProps().add("driver", "pci-bridge").
				add("chassis_nr", *c.PCI.Target.ChassisNr).
				add("id", alias(c.Alias))
			if err := b.addPCI(p, c.Address, what); err != nil {
				return err
			}
			b.device(p)
			return nil
		}
		return unsupported("%s: model '%s'", what, c.Model)
	case "usb":
		return b.usbController(c, what)
	case "virtio-serial":
		if c.VirtIOSerial != nil && (c.VirtIOSerial.Ports != nil || c.VirtIOSerial.Vectors != nil) {
			return unsupported("%s: ports/vectors", what)
		}
		p := newProps().add("driver", "virtio-serial-pci").add("id", alias(c.Alias))
		if err := b.addPCI(p, c.Address, what); err != nil {
			return err
		}
		b.device(p)
		return nil
	case "fdc":
		if idx == 0 && !b.q35 {
			return nil // the ISA floppy controller of the i440fx machine
		}
	case "ide":
		if idx == 0 && !b.q35 {
			return nil // PIIX3 IDE is part of the i440fx machine
		}
	case "sata":
		if idx == 0 && b.q35 {
			return nil // ICH9 AHCI is part of the q35 machine
		}
		p := newProps().add("driver", "ahci").add("id", alias(c.Alias))
		if err := b.addPCI(p, c.Address, what); err != nil {
			return err
		}
		b.device(p)
		return nil
	}
	return unsupported("%s (model '%s')", what, c.Model)
}

// bootIndices computes each disk's and interface's bootindex the way
// libvirt 9.0 turns <os><boot dev=.../> into per-device indices: the first
// device of each kind gets the position of that kind in the boot list.
func (b *builder) bootIndices() (disks, nets []uint) {
	d := b.dom.Devices
	disks = make([]uint, len(d.Disks))
	nets = make([]uint, len(d.Interfaces))
	var cd, hd, fd, nw uint
	for i, bd := range b.dom.OS.BootDevices {
		switch bd.Dev {
		case "cdrom":
			cd = uint(i + 1)
		case "hd":
			hd = uint(i + 1)
		case "fd":
			fd = uint(i + 1)
		case "network":
			nw = uint(i + 1)
		}
	}
	for i := range d.Disks {
		disk := &d.Disks[i]
		if disk.Boot != nil {
			disks[i] = disk.Boot.Order
			continue
		}
		switch disk.Device {
		case "cdrom":
			disks[i], cd = cd, 0
		case "floppy":
			disks[i], fd = fd, 0
		default:
			disks[i], hd = hd, 0
		}
	}
	for i := range d.Interfaces {
		if n := &d.Interfaces[i]; n.Boot != nil {
			nets[i] = n.Boot.Order
			continue
		}
		nets[i], nw = nw, 0
	}
	return disks, nets
}

func (b *builder) disks() error {
	d := b.dom.Devices
	boot, _ := b.bootIndices()
	for i := range d.Disks {
		nodeIndex := DiskNodeIndex(b.dom, i)
		if err := b.disk(&d.Disks[i], nodeIndex, boot[i]); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) disk(disk *libvirtxml.DomainDisk, nodeIndex int, bootIndex uint) error {
	dev := ""
	bus := ""
	if disk.Target != nil {
		dev, bus = disk.Target.Dev, disk.Target.Bus
	}
	what := fmt.Sprintf("disk '%s'", dev)
	device := disk.Device
	if device == "" {
		device = "disk"
	}
	if device != "disk" && device != "cdrom" && device != "floppy" {
		return unsupported("%s: device '%s'", what, device)
	}
	switch {
	case disk.Auth != nil, disk.Encryption != nil, disk.IOTune != nil, disk.ThrottleFilters != nil,
		disk.BlockIO != nil, disk.Geometry != nil, disk.Mirror != nil,
		disk.Transient != nil, disk.Serial != "", disk.WWN != "", disk.Vendor != "", disk.Product != "",
		disk.BackendDomain != nil, disk.RawIO != "", disk.SGIO != "", disk.Model != "":
		return unsupported("%s: only plain file/block disks without tuning are supported", what)
	}
	if disk.Target != nil && (disk.Target.Tray == "open" || disk.Target.Removable != "" ||
		disk.Target.RotationRate != 0 || disk.Target.DPOFUA != "") {
		return unsupported("%s: target tray/removable/rotation_rate settings", what)
	}
	format := "raw"
	if drv := disk.Driver; drv != nil {
		if drv.Name != "" && drv.Name != "qemu" {
			return unsupported("%s: driver name '%s'", what, drv.Name)
		}
		switch drv.Type {
		case "", "raw":
		case "qcow2":
			format = "qcow2"
		default:
			return unsupported("%s: format '%s'", what, drv.Type)
		}
		if drv.IOEventFD != "" || drv.EventIDX != "" || drv.CopyOnRead != "" ||
			drv.DiscardNoUnref != "" || drv.IOThreads != nil ||
			drv.Queues != nil || drv.QueueSize != nil || drv.IOMMU != "" || drv.ATS != "" ||
			drv.Packed != "" || drv.PagePerVQ != "" || drv.MetadataCache != nil || drv.Statistics != nil {
			return unsupported("%s: <driver> attributes other than cache, io, discard, detect_zeroes, error policies and iothread", what)
		}
	}
	// qemuValidateDomainDeviceDefDiskFrontend: only a raw image can be
	// written by several guests at once.
	if disk.Shareable != nil && disk.ReadOnly == nil && format != "raw" {
		return unsupported("shared access for disk '%s' requires use of supported storage format", dev)
	}
	tune, err := diskTuningOf(disk.Driver, what)
	if err != nil {
		return err
	}
	// The storage node: libvirt lets QEMU open the image read-only when it
	// can and passes discard requests through.
	var storage *props
	if src := disk.Source; src != nil {
		if src.Network != nil || src.Volume != nil || src.NVME != nil || src.VHostUser != nil ||
			src.VHostVDPA != nil || src.Dir != nil || src.Slices != nil || src.DataStore != nil ||
			src.Encryption != nil || src.Reservations != nil || src.StartupPolicy != "" {
			return unsupported("%s: source kind", what)
		}
		switch {
		case src.File != nil && src.File.File != "":
			driver := "file"
			storage = newProps().add("driver", driver).add("filename", src.File.File).addIf(tune.aio != "", "aio", tune.aio)
		case src.Block != nil && src.Block.Dev != "":
			driver := "host_device"
			if device == "cdrom" && isCDROM(src.Block.Dev) {
				driver = "host_cdrom"
			}
			storage = newProps().add("driver", driver).add("filename", src.Block.Dev).addIf(tune.aio != "", "aio", tune.aio)
		}
	}
	if storage == nil && device == "disk" {
		return unsupported("%s has no source", what)
	}
	readOnly := device == "cdrom" || disk.ReadOnly != nil
	nodeStorage, nodeFormat := blockNodeNames(nodeIndex)
	if storage != nil {
		storage.add("node-name", nodeStorage)
		tune.addCache(storage)
		storage.add("auto-read-only", true).add("discard", "unmap")
		fmtp := newProps().add("node-name", nodeFormat).add("read-only", readOnly).
			addIf(tune.discard != "", "discard", tune.discard).
			addIf(tune.detectZeroes != "", "detect-zeroes", tune.detectZeroes)
		tune.addCache(fmtp)
		fmtp.add("driver", format).add("file", nodeStorage)
		chain, err := backingChain(disk, what)
		if err != nil {
			return err
		}
		switch {
		case len(chain) > 0:
			_, base := blockNodeNames(nodeIndex + 1)
			fmtp.add("backing", base)
		case disk.BackingStore != nil && format == "qcow2":
			// An empty <backingStore/> says the image has none: tell
			// QEMU not to look for one, as libvirt does.
			fmtp.add("backing", nil)
		}
		// The chain's images come first, the deepest first, each
		// read-only and pointing at the next one down (libvirt's order).
		for k := len(chain) - 1; k >= 0; k-- {
			bs := chain[k]
			st, fm := blockNodeNames(nodeIndex + 1 + k)
			bstorage := newProps().add("driver", "file").add("filename", bs.Source.File.File).addIf(tune.aio != "", "aio", tune.aio).
				add("node-name", st)
			tune.addCache(bstorage)
			bstorage.add("auto-read-only", true).add("discard", "unmap")
			bformat := newProps().add("node-name", fm).add("read-only", true)
			tune.addCache(bformat)
			bformat.add("driver", bs.Format.Type).add("file", st)
			if k+1 < len(chain) {
				_, next := blockNodeNames(nodeIndex + 2 + k)
				bformat.add("backing", next)
			} else if bs.Format.Type == "qcow2" {
				bformat.add("backing", nil)
			}
			b.arg("-blockdev", bstorage.String())
			b.arg("-blockdev", bformat.String())
		}
		b.arg("-blockdev", storage.String())
		b.arg("-blockdev", fmtp.String())
	}

	id := alias(disk.Alias)
	var p *props
	switch bus {
	case "virtio":
		if device != "disk" {
			return unsupported("%s: virtio %s", what, device)
		}
		p = newProps().add("driver", "virtio-blk-pci").addIf(tune.iothread != "", "iothread", tune.iothread)
		if err := b.addPCI(p, disk.Address, what); err != nil {
			return err
		}
	case "ide", "sata":
		if disk.Address == nil || disk.Address.Drive == nil {
			return unsupported("%s has no drive address", what)
		}
		a := disk.Address.Drive
		driver := "ide-hd"
		if device == "cdrom" {
			driver = "ide-cd"
		}
		p = newProps().add("driver", driver)
		ctrl, err := b.controllerAlias(bus, uval(a.Controller))
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if bus == "ide" {
			if b.q35 {
				return unsupported("%s: IDE bus on a q35 machine", what)
			}
			p.add("bus", fmt.Sprintf("%s.%d", ctrl, uval(a.Bus))).add("unit", uval(a.Unit))
		} else {
			// AHCI has one device per port; libvirt uses the unit as the
			// port (bus) number.
			p.add("bus", fmt.Sprintf("%s.%d", ctrl, uval(a.Unit)))
		}
	case "fdc":
		if b.q35 {
			return unsupported("%s: floppy on a q35 machine", what)
		}
		if disk.Address == nil || disk.Address.Drive == nil {
			return unsupported("%s has no drive address", what)
		}
		p = newProps().add("driver", "floppy").add("unit", uval(disk.Address.Drive.Unit))
	default:
		return unsupported("%s: bus '%s'", what, bus)
	}
	if tune.iothread != "" && bus != "virtio" {
		return unsupported("%s: iothread on bus '%s'", what, bus)
	}
	if storage != nil {
		p.add("drive", nodeFormat)
	}
	p.add("id", id)
	p.addIf(bootIndex > 0, "bootindex", bootIndex)
	p.addIf(tune.writeCache != "", "write-cache", tune.writeCache)
	// <shareable/>: other processes may write the image too (libvirt's
	// share-rw, between write-cache and the error policies).
	p.addIf(disk.Shareable != nil, "share-rw", true)
	p.addIf(tune.werror != "", "werror", tune.werror)
	p.addIf(tune.rerror != "", "rerror", tune.rerror)
	b.device(p)
	return nil
}

// diskTuning is what a disk's <driver> attributes turn into on the
// command line (qemuBuildDriveDevCacheStr, qemuBlockStorageSourceGetBlockdevProps
// and qemuBuildDiskDeviceProps in libvirt 9.0).
type diskTuning struct {
	aio          string
	cacheDirect  *bool
	noFlush      bool
	writeCache   string
	discard      string
	detectZeroes string
	werror       string
	rerror       string
	iothread     string
}

// addCache adds the blockdev cache object when the disk sets a cache mode.
func (t diskTuning) addCache(p *props) {
	if t.cacheDirect != nil {
		p.add("cache", newProps().add("direct", *t.cacheDirect).add("no-flush", t.noFlush))
	}
}

func diskTuningOf(drv *libvirtxml.DomainDiskDriver, what string) (diskTuning, error) {
	var t diskTuning
	if drv == nil {
		return t, nil
	}
	direct := func(v bool) *bool { return &v }
	// virDomainDiskCacheModeToQEMU: O_DIRECT, the guest-visible write
	// cache and flushes for each mode.
	switch drv.Cache {
	case "", "default":
	case "none":
		t.cacheDirect, t.writeCache = direct(true), "on"
	case "writethrough":
		t.cacheDirect, t.writeCache = direct(false), "off"
	case "writeback":
		t.cacheDirect, t.writeCache = direct(false), "on"
	case "directsync":
		t.cacheDirect, t.writeCache = direct(true), "off"
	case "unsafe":
		t.cacheDirect, t.writeCache, t.noFlush = direct(false), "on", true
	default:
		return t, unsupported("%s: cache mode '%s'", what, drv.Cache)
	}
	switch drv.IO {
	case "", "native", "threads", "io_uring":
		t.aio = drv.IO
	default:
		return t, unsupported("%s: io mode '%s'", what, drv.IO)
	}
	switch drv.Discard {
	case "", "ignore":
	case "unmap":
		t.discard = "unmap"
	default:
		return t, unsupported("%s: discard '%s'", what, drv.Discard)
	}
	switch drv.DetectZeros {
	case "", "off":
	case "on":
		t.detectZeroes = "on"
	case "unmap":
		// Unmapping zeroes needs discard; libvirt downgrades to "on".
		t.detectZeroes = "on"
		if t.discard == "unmap" {
			t.detectZeroes = "unmap"
		}
	default:
		return t, unsupported("%s: detect_zeroes '%s'", what, drv.DetectZeros)
	}
	// The read error policy follows the write one unless given, except
	// enospace, which only concerns writes.
	switch drv.ErrorPolicy {
	case "":
	case "stop", "report", "ignore", "enospace":
		t.werror = drv.ErrorPolicy
		if drv.ErrorPolicy != "enospace" {
			t.rerror = drv.ErrorPolicy
		}
	default:
		return t, unsupported("%s: error_policy '%s'", what, drv.ErrorPolicy)
	}
	switch drv.RErrorPolicy {
	case "":
	case "stop", "report", "ignore":
		t.rerror = drv.RErrorPolicy
	default:
		return t, unsupported("%s: rerror_policy '%s'", what, drv.RErrorPolicy)
	}
	if drv.IOThread != nil {
		t.iothread = fmt.Sprintf("iothread%d", *drv.IOThread)
	}
	return t, nil
}

func (b *builder) controllerAlias(typ string, idx uint) (string, error) {
	for i := range b.dom.Devices.Controllers {
		c := &b.dom.Devices.Controllers[i]
		if c.Type == typ && uval(c.Index) == idx && c.Alias != nil {
			return c.Alias.Name, nil
		}
	}
	return "", unsupported("no %s controller with index %d", typ, idx)
}

// isCDROM is a variable so tests can stand in for the host, as libvirt's
// test suite mocks virFileIsCDROM.
var isCDROM = hostIsCDROM

var nicDrivers = map[string]string{
	"virtio":  "virtio-net-pci",
	"e1000":   "e1000",
	"e1000e":  "e1000e",
	"rtl8139": "rtl8139",
}

func (b *builder) nets() error {
	_, boot := b.bootIndices()
	for i := range b.dom.Devices.Interfaces {
		if err := b.net(&b.dom.Devices.Interfaces[i], boot[i], ""); err != nil {
			return err
		}
	}
	return nil
}

// net adds one NIC's -netdev and -device. A tap NIC's descriptor is
// tapFD, a name passed with getfd, when set (hotplug); otherwise the
// next inherited descriptor number.
func (b *builder) net(n *libvirtxml.DomainInterface, bootIndex uint, tapFD string) error {
	id := alias(n.Alias)
	what := fmt.Sprintf("interface '%s'", id)
	tap := isTapNIC(n)
	if n.Source == nil || (n.Source.User == nil && !tap) {
		return unsupported("%s: only types 'user', 'network', 'bridge' and 'ethernet' are supported", what)
	}
	if (n.Source.User != nil && n.Source.User.Dev != "") || len(n.IP) > 0 || len(n.Route) > 0 || len(n.PortForward) > 0 ||
		n.Backend != nil || n.Driver != nil || n.ROM != nil || n.MTU != nil || n.Link != nil ||
		(n.Target != nil && !tap) || n.Guest != nil || n.Tune != nil || n.Teaming != nil || n.Coalesce != nil ||
		n.Bandwidth != nil || n.VLan != nil || n.VirtualPort != nil || n.FilterRef != nil ||
		n.Script != nil || n.DownScript != nil || n.BackendDomain != nil {
		return unsupported("%s: settings beyond model, mac, target and address", what)
	}
	model := ""
	if n.Model != nil {
		model = n.Model.Type
	}
	driver, ok := nicDrivers[model]
	if !ok {
		return unsupported("%s: model '%s'", what, model)
	}
	if n.MAC == nil || n.MAC.Address == "" {
		return unsupported("%s has no MAC address", what)
	}
	mac, err := net.ParseMAC(n.MAC.Address)
	if err != nil {
		return unsupported("%s: MAC address '%s'", what, n.MAC.Address)
	}
	if tap {
		// libvirt opens the tap device itself and passes the
		// descriptor (qemuBuildHostNetProps): {"type":"tap","fd":"N"}.
		// vhost-net is only used with KVM (qemuInterfaceOpenVhostNet).
		fd := tapFD
		if fd == "" {
			fd = fmt.Sprint(b.nextFD)
			b.cmd.Taps = append(b.cmd.Taps, PassedTap{FD: b.nextFD, Alias: id})
			b.nextFD++
		}
		b.arg("-netdev", newProps().add("type", "tap").add("fd", fd).add("id", "host"+id).String())
	} else {
		b.arg("-netdev", newProps().add("type", "user").add("id", "host"+id).String())
	}
	p := newProps().add("driver", driver).add("netdev", "host"+id).add("id", id).add("mac", mac.String())
	if err := b.addPCI(p, n.Address, what); err != nil {
		return err
	}
	p.addIf(bootIndex > 0, "bootindex", bootIndex)
	b.device(p)
	return nil
}

// isTapNIC reports whether a NIC is backed by a host tap device: types
// network, bridge and ethernet.
func isTapNIC(n *libvirtxml.DomainInterface) bool {
	return n.Source != nil && (n.Source.Network != nil || n.Source.Bridge != nil || n.Source.Ethernet != nil)
}

// chardev returns the -chardev backend for a character device and
// registers any file QEMU must receive as a descriptor.
func (b *builder) chardev(id string, src *libvirtxml.DomainChardevSource, log *libvirtxml.DomainChardevLog, owner string) (string, error) {
	if log != nil {
		return "", unsupported("%s: <log>", owner)
	}
	switch {
	case src == nil:
		return "", unsupported("%s has no source", owner)
	case src.Pty != nil:
		return "pty,id=" + id, nil
	case src.File != nil:
		// libvirt opens the file itself and passes it in an fd set, so
		// the file is created with libvirt's ownership and truncated
		// unless append is on.
		set := b.fdset
		b.fdset++
		fd := b.nextFD
		b.nextFD++
		opaque := owner + "-source"
		b.cmd.Files = append(b.cmd.Files, PassedFile{FD: fd, Path: src.File.Path, Append: src.File.Append == "on", Opaque: opaque})
		b.arg("-add-fd", fmt.Sprintf("set=%d,fd=%d,opaque=%s", set, fd, opaque))
		s := fmt.Sprintf("file,id=%s,path=/dev/fdset/%d", id, set)
		if src.File.Append != "" {
			s += ",append=" + src.File.Append
		}
		return s, nil
	}
	return "", unsupported("%s: source type", owner)
}

func (b *builder) serials() error {
	for i := range b.dom.Devices.Serials {
		s := &b.dom.Devices.Serials[i]
		id := alias(s.Alias)
		if s.Protocol != nil || s.Address != nil {
			return unsupported("serial '%s': protocol/address", id)
		}
		port := uint(i)
		if s.Target != nil {
			if s.Target.Type != "" && s.Target.Type != "isa-serial" {
				return unsupported("serial '%s': target type '%s'", id, s.Target.Type)
			}
			if s.Target.Model != nil && s.Target.Model.Name != "" && s.Target.Model.Name != "isa-serial" {
				return unsupported("serial '%s': target model '%s'", id, s.Target.Model.Name)
			}
			if s.Target.Port != nil {
				port = *s.Target.Port
			}
		}
		ch, err := b.chardev("char"+id, s.Source, s.Log, id)
		if err != nil {
			return err
		}
		b.arg("-chardev", ch)
		b.device(newProps().add("driver", "isa-serial").add("chardev", "char"+id).add("id", id).add("index", port))
	}
	return nil
}

// consoles accepts only the console libvirt derives from the first serial
// port: it is the same chardev and has no command line of its own.
func (b *builder) consoles() error {
	d := b.dom.Devices
	for i := range d.Consoles {
		c := &d.Consoles[i]
		if i == 0 && len(d.Serials) > 0 && consoleIsSerial(c) {
			continue
		}
		t := ""
		if c.Target != nil {
			t = c.Target.Type
		}
		return unsupported("console %d with target type '%s'", i, t)
	}
	return nil
}

func (b *builder) inputs() error {
	for i := range b.dom.Devices.Inputs {
		in := &b.dom.Devices.Inputs[i]
		id := alias(in.Alias)
		switch in.Bus {
		case "ps2", "":
			if in.Type != "mouse" && in.Type != "keyboard" {
				return unsupported("input '%s': %s on ps2", id, in.Type)
			}
			continue // part of the PC machine
		case "usb":
		default:
			return unsupported("input '%s': bus '%s'", id, in.Bus)
		}
		driver := map[string]string{"tablet": "usb-tablet", "mouse": "usb-mouse", "keyboard": "usb-kbd"}[in.Type]
		// libvirtxml leaves an empty Source behind for every input.
		hasSource := in.Source != nil && (in.Source.Passthrough != nil || in.Source.EVDev != nil)
		if driver == "" || hasSource || in.Model != "" || in.Driver != nil {
			return unsupported("input '%s': usb %s", id, in.Type)
		}
		p := newProps().add("driver", driver).add("id", id)
		if err := b.addUSB(p, in.Address, "input '"+id+"'"); err != nil {
			return err
		}
		b.device(p)
	}
	return nil
}

func (b *builder) addUSB(p *props, addr *libvirtxml.DomainAddress, what string) error {
	if addr == nil || addr.USB == nil || addr.USB.Port == "" {
		return unsupported("%s has no USB address (addresses are assigned at define time)", what)
	}
	ctrl, err := b.controllerAlias("usb", uval(addr.USB.Bus))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	p.add("bus", ctrl+".0").add("port", addr.USB.Port)
	return nil
}

func (b *builder) memballoon() error {
	mb := b.dom.Devices.MemBalloon
	if mb == nil || mb.Model == "none" {
		return nil
	}
	if mb.Model != "virtio" {
		return unsupported("memballoon model '%s'", mb.Model)
	}
	if mb.AutoDeflate != "" || mb.FreePageReporting != "" || mb.Driver != nil {
		return unsupported("memballoon autodeflate/freePageReporting/driver settings")
	}
	p := newProps().add("driver", "virtio-balloon-pci").add("id", alias(mb.Alias))
	if err := b.addPCI(p, mb.Address, "memballoon"); err != nil {
		return err
	}
	b.device(p)
	return nil
}
