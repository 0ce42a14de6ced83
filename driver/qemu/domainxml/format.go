package domainxml

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat/xmlfmt"
)

// FormatOptions mirrors libvirt's VIR_DOMAIN_XML_* flags.
type FormatOptions struct {
	// Inactive prints the persistent definition (VIR_DOMAIN_XML_INACTIVE):
	// no id, no aliases, no runtime-only elements.
	Inactive bool
	// Secure keeps passwords (VIR_DOMAIN_XML_SECURE).
	Secure bool
	// Migratable prints what a migration destination gets
	// (VIR_DOMAIN_XML_MIGRATABLE): devices libvirt adds implicitly are left
	// out so that older libvirt versions accept the XML.
	Migratable bool
	// ChannelDir is the directory libvirt creates unix channel sockets
	// in (domainxml.Runtime.ChannelDir's parent); with Migratable, paths
	// under it are left out.
	ChannelDir string
	// ConfigListen are the listen addresses qemu.conf gave displays that
	// had none (vnc_listen, spice_listen); with Migratable they are left
	// out, as libvirt leaves out listens marked fromConfig, so that the
	// destination applies its own.
	ConfigListen []string
	// Live describes the running domain; nil for a domain that is not
	// running. Ignored when Inactive is set.
	Live *LiveInfo
}

// LiveInfo is the runtime state that appears in a running domain's XML.
type LiveInfo struct {
	// ID is the domain id (<domain id='N'>).
	ID int
	// Partition is the resource partition; "" means libvirt's default
	// "/machine".
	Partition string
	// DACLabel is the DAC label QEMU runs with; "" means "+0:+0" (root, as
	// configured by qemu.conf user/group = root).
	DACLabel string
}

// attrOrder lists elements whose libvirt attribute order differs from the
// field order libvirtxml marshals in (virDomainVideoDefFormat,
// virCPUDefFormatBuf).
var attrOrder = map[string][]string{
	"video/model": {"type", "ram", "vram", "vram64", "vgamem", "heads", "primary"},
	"domain/cpu":  {"mode", "match", "check", "migratable"},
	"graphics":    {"type", "port", "autoport", "websocket", "listen"},
	"redirdev":    {"bus", "type"},
	"controller":  {"type", "index", "model", "ports"},
}

// chardevChildren is virDomainChrDefFormat's order: the log comes right
// after the source, before the target.
var chardevChildren = []string{"source", "protocol", "log", "target", "alias", "address"}

var childOrder = map[string][]string{
	// virDomainFeature's order, not libvirtxml's field order.
	"domain/features": {"acpi", "apic", "pae", "hap", "viridian", "privnet", "hyperv", "kvm", "pvspinlock", "capabilities", "pmu", "vmport", "gic", "smm", "ioapic"},
	"devices/serial":  chardevChildren,
	"devices/console": chardevChildren,
}

// attrValue prints numbers libvirt prints in hex (a pcie-root-port's port,
// virDomainControllerDefFormat).
var attrValue = map[string]func(string) string{
	"controller/target@port": func(v string) string {
		n, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			return v
		}
		return fmt.Sprintf("0x%x", n)
	},
}

// Format prints a definition the way libvirt 9.0's
// qemuDomainDefFormatBufInternal does for the given flags.
func Format(d *libvirtxml.Domain, opts FormatOptions) (string, error) {
	c, err := copyDomain(d)
	if err != nil {
		return "", err
	}
	live := opts.Live != nil && !opts.Inactive
	if live {
		c.ID = &opts.Live.ID
		part := opts.Live.Partition
		if part == "" {
			part = "/machine"
		}
		c.Resource = &libvirtxml.DomainResource{Partition: part}
		if len(c.SecLabel) == 0 {
			label := opts.Live.DACLabel
			if label == "" {
				label = "+0:+0"
			}
			c.SecLabel = []libvirtxml.DomainSecLabel{{Type: "dynamic", Model: "dac", Relabel: "yes", Label: label, ImageLabel: label}}
		}
	} else {
		StripLive(c)
	}
	if opts.Migratable {
		c.ID = nil
		stripAliases(c.Devices)
		stripImages(c.Devices)
		stripImplicit(c)
		// virSecurityLabelDefFormat prints generated labels only for the
		// running domain's own XML, not in migratable XML.
		for i := range c.SecLabel {
			if c.SecLabel[i].Type == "dynamic" {
				c.SecLabel[i].Label, c.SecLabel[i].ImageLabel = "", ""
			}
		}
	}
	if !opts.Secure && c.Devices != nil {
		for i := range c.Devices.Graphics {
			if v := c.Devices.Graphics[i].VNC; v != nil {
				v.Passwd = ""
			}
		}
	}
	if c.Devices != nil {
		for i := range c.Devices.Channels {
			ch := &c.Devices.Channels[i]
			u := ch.Source.UNIX
			if u == nil {
				continue
			}
			// qemuDomainChrDefDropDefaultPath: the path libvirt chose in
			// its channel directory is not part of the migratable XML;
			// the destination picks its own.
			if opts.Migratable && opts.ChannelDir != "" && strings.HasPrefix(u.Path, opts.ChannelDir+"/") {
				u.Path = ""
			}
			// A bind socket whose path libvirt picks at start prints no
			// <source> (virDomainChrSourceDefFormat).
			if u.Path == "" {
				u.Mode = ""
			}
		}
	}
	if opts.Migratable && c.Devices != nil {
		for i := range c.Devices.Graphics {
			dropConfigListen(&c.Devices.Graphics[i], opts.ConfigListen)
		}
	}
	raw, err := c.Marshal()
	if err != nil {
		return "", fmt.Errorf("formatting domain %q: %w", d.Name, err)
	}
	raw = strings.ReplaceAll(raw, "<source></source>", "")
	return xmlfmt.ReformatWith(raw, xmlfmt.Options{AttrOrder: attrOrder, ChildOrder: childOrder, AttrValue: attrValue})
}

// StripLive removes runtime-only state from a definition in place: the
// id, the resource partition, device aliases, generated seclabels and pty
// paths. What is left is the persistent definition.
func StripLive(d *libvirtxml.Domain) {
	d.ID = nil
	d.Resource = nil
	d.SecLabel = nil
	if d.Devices == nil {
		return
	}
	stripAliases(d.Devices)
	stripImages(d.Devices)
	for i := range d.Devices.Serials {
		if s := d.Devices.Serials[i].Source; s != nil && s.Pty != nil {
			s.Pty.Path = ""
		}
	}
	for i := range d.Devices.Consoles {
		if s := d.Devices.Consoles[i].Source; s != nil && s.Pty != nil {
			s.Pty.Path = ""
		}
		d.Devices.Consoles[i].TTY = ""
	}
	for i := range d.Devices.Channels {
		if t := d.Devices.Channels[i].Target; t != nil && t.VirtIO != nil {
			t.VirtIO.State = ""
		}
	}
	// An autoport display's port is chosen at each start.
	for i := range d.Devices.Graphics {
		g := &d.Devices.Graphics[i]
		if g.VNC != nil && g.VNC.AutoPort == "yes" {
			g.VNC.Port = -1
		}
		if g.Spice != nil && g.Spice.AutoPort == "yes" {
			g.Spice.Port, g.Spice.TLSPort = 0, 0
		}
	}
}

// stripImages drops what a start learnt of the disk images: their
// indices, and the backing chains read from them, which are the images'
// business, not the definition's (libvirt leaves them out; the empty
// terminator of a disk without a chain stays). A chain the definition
// itself records (one without indices: libvirt records the image an
// external snapshot was taken on) stays.
func stripImages(dv *libvirtxml.DomainDeviceList) {
	if dv == nil {
		return
	}
	for i := range dv.Disks {
		disk := &dv.Disks[i]
		if disk.Source != nil {
			disk.Source.Index = 0
		}
		if !EmptyBackingStore(disk.BackingStore) && disk.BackingStore.Index != 0 {
			disk.BackingStore = nil
		}
	}
}

func stripAliases(dv *libvirtxml.DomainDeviceList) {
	if dv == nil {
		return
	}
	for i := range dv.Disks {
		dv.Disks[i].Alias = nil
	}
	for i := range dv.Controllers {
		dv.Controllers[i].Alias = nil
	}
	for i := range dv.Interfaces {
		dv.Interfaces[i].Alias = nil
	}
	for i := range dv.Serials {
		dv.Serials[i].Alias = nil
	}
	for i := range dv.Consoles {
		dv.Consoles[i].Alias = nil
	}
	for i := range dv.Inputs {
		dv.Inputs[i].Alias = nil
	}
	for i := range dv.Videos {
		dv.Videos[i].Alias = nil
	}
	if dv.MemBalloon != nil {
		dv.MemBalloon.Alias = nil
	}
	for i := range dv.Channels {
		dv.Channels[i].Alias = nil
	}
	for i := range dv.Sounds {
		dv.Sounds[i].Alias = nil
	}
	for i := range dv.RedirDevs {
		dv.RedirDevs[i].Alias = nil
	}
	for i := range dv.Watchdogs {
		dv.Watchdogs[i].Alias = nil
	}
	for i := range dv.RNGs {
		dv.RNGs[i].Alias = nil
	}
	for i := range dv.Panics {
		dv.Panics[i].Alias = nil
	}
}

// stripImplicit drops, for VIR_DOMAIN_XML_MIGRATABLE, what
// qemuDomainDefFormatBufInternal drops so that older libvirt accepts the
// XML: the only USB controller when it is the default one at index 0, the
// only PCI controller when it is pci-root, the implicit PS/2 keyboard and
// the default audio backend. Compared against libvirt 9.0's Begin3 XML in
// the reference captures.
func stripImplicit(d *libvirtxml.Domain) {
	dv := d.Devices
	if dv == nil {
		return
	}
	only := func(typ string) int {
		at := -1
		for i, c := range dv.Controllers {
			if c.Type == typ {
				if at >= 0 {
					return -1
				}
				at = i
			}
		}
		return at
	}
	drop := map[int]bool{}
	if i := only("usb"); i >= 0 {
		c := dv.Controllers[i]
		if c.Index != nil && *c.Index == 0 && (c.Model == "" || c.Model == "piix3-uhci") {
			drop[i] = true
		}
	}
	if i := only("pci"); i >= 0 {
		c := dv.Controllers[i]
		if c.Index != nil && *c.Index == 0 && c.Model == "pci-root" {
			drop[i] = true
		}
	}
	var ctrls []libvirtxml.DomainController
	for i, c := range dv.Controllers {
		if !drop[i] {
			ctrls = append(ctrls, c)
		}
	}
	dv.Controllers = ctrls
	var inputs []libvirtxml.DomainInput
	for _, in := range dv.Inputs {
		if in.Type == "keyboard" && in.Bus == "ps2" {
			continue
		}
		inputs = append(inputs, in)
	}
	dv.Inputs = inputs
	if len(dv.Audios) == 1 && dv.Audios[0].None != nil && dv.Audios[0].ID == 1 {
		dv.Audios = nil
	}
}

func copyDomain(d *libvirtxml.Domain) (*libvirtxml.Domain, error) {
	raw, err := d.Marshal()
	if err != nil {
		return nil, fmt.Errorf("copying domain %q: %w", d.Name, err)
	}
	c := &libvirtxml.Domain{}
	if err := c.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("copying domain %q: %w", d.Name, err)
	}
	return c, nil
}

func dropConfigListen(g *libvirtxml.DomainGraphic, config []string) {
	var listen *string
	var listeners []libvirtxml.DomainGraphicListener
	switch {
	case g.VNC != nil:
		listen, listeners = &g.VNC.Listen, g.VNC.Listeners
	case g.Spice != nil:
		listen, listeners = &g.Spice.Listen, g.Spice.Listeners
	default:
		return
	}
	if !slices.Contains(config, *listen) {
		return
	}
	*listen = ""
	for i := range listeners {
		if a := listeners[i].Address; a != nil && slices.Contains(config, a.Address) {
			a.Address = ""
		}
	}
}
