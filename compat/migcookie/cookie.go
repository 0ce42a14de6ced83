// Package migcookie reads and writes libvirt's QEMU migration cookie
// (qemuMigrationCookie): the <qemu-migration> XML document that every step
// of migration protocol v3 (Begin, Prepare, Perform, Finish, Confirm)
// hands to the next one. govirtd migrates guests to and from real libvirtd
// 9.0 hosts, so the cookie must be printed exactly as libvirt 9.0 prints it
// (src/qemu/qemu_migration_cookie.c, qemuMigrationCookieXMLFormat) and read
// as leniently as libvirt reads it (qemuMigrationCookieXMLParse).
//
// On the wire a cookie is the XML followed by one NUL byte; the length
// libvirt sends counts the NUL. Marshal adds it and Parse accepts it.
package migcookie

import (
	"fmt"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat/xmlfmt"
)

// Cookie is libvirt's migration cookie (qemuMigrationCookie).
//
// Elements are printed in libvirt's order whatever order they were read
// in. Elements neither libvirt 9.0 nor govirtd knows are dropped by Parse,
// as libvirt's parser, which only looks up the elements it knows, drops
// them.
type Cookie struct {
	// Name and UUID identify the domain (always the source's name, even
	// when the destination renames it); Hostname and HostUUID the host
	// that made the cookie.
	Name, UUID, Hostname, HostUUID string

	// Features lists the mandatory parts the receiver must understand
	// (<feature name='X'/>), in libvirt's order (see the Feature
	// constants). libvirt lists lockstate even when no <lockstate>
	// element follows: with its "nop" lock manager there is no state.
	Features []string

	// Graphics is the <graphics> element (SPICE seamless migration data),
	// kept as XML.
	Graphics RawXML
	// LockState is the lock manager's state.
	LockState *LockState
	// Persistent is the inactive definition sent with --persistent
	// (VIR_MIGRATE_PERSIST_DEST), the <domain> element.
	Persistent *libvirtxml.Domain
	// Network is the <network> element (per-interface port data), kept
	// as XML.
	Network RawXML
	// NBD describes the destination's NBD server for storage migration.
	NBD *NBD
	// Stats are the statistics of the completed migration job.
	Stats *Statistics
	// CPU is the guest CPU as the source runs it (expanded: all features
	// QEMU enabled), which the destination starts QEMU with.
	CPU *libvirtxml.DomainCPU
	// AllowReboot is the <allowReboot> element libvirt before 9.0 printed;
	// libvirt 9.0 neither prints nor reads it. Kept as XML so that a
	// cookie from an older host round-trips.
	AllowReboot RawXML
	// Caps lists the migration capabilities the sender's QEMU supports
	// (<capabilities>). nil means no element; an empty non-nil slice is
	// an element without <cap> children.
	Caps []MigrationCap
	// BlockDirtyBitmaps is the <blockDirtyBitmaps> element, kept as XML.
	BlockDirtyBitmaps RawXML

	// Govirtd carries what only govirtd hosts exchange. libvirt ignores
	// the element: its parser reads nothing but the elements it knows.
	Govirtd *Extension

	// The text the CPU and persistent definition were read from, printed
	// again as long as the parsed value is not changed, because
	// libvirtxml does not print every definition the way libvirt does.
	cpuSrc, persistentSrc kept
}

// RawXML is one element, printed the way libvirt prints XML (see
// xmlfmt.Reformat) with no indentation of its own. "" means no element.
type RawXML string

// LockState is <lockstate driver='D'><leases>L</leases></lockstate>.
type LockState struct {
	Driver string
	Leases string
}

// NBD is <nbd port='P'><disk target='T' capacity='C'/>...</nbd>.
type NBD struct {
	// Port is the destination's NBD server port; 0 means not set.
	Port  int
	Disks []NBDDisk
}

// NBDDisk is a disk the source asks the destination to preallocate.
type NBDDisk struct {
	Target   string
	Capacity uint64
}

// MigrationCap is one <cap name='X' auto='yes|no'/>: a migration
// capability the sender's QEMU supports, and whether the sender turns it on
// itself on every migration.
type MigrationCap struct {
	Name string
	Auto bool
}

// Extension is govirtd's own element, <govirtd>.
type Extension struct {
	// URI is the libvirt URI of the host that made the cookie (e.g.
	// qemu+tcp://127.0.0.3:16509/system), so that the other side can
	// connect back and ask, after a failure, whether that host runs the
	// guest.
	URI string
}

// Mandatory feature names (qemuMigrationCookieFlag), in the order libvirt
// numbers them and prints them.
const (
	FeatureGraphics          = "graphics"
	FeatureLockState         = "lockstate"
	FeaturePersistent        = "persistent"
	FeatureNetwork           = "network"
	FeatureNBD               = "nbd"
	FeatureStatistics        = "statistics"
	FeatureMemoryHotplug     = "memory-hotplug"
	FeatureCPUHotplug        = "cpu-hotplug"
	FeatureCPU               = "cpu"
	FeatureAllowReboot       = "allowReboot"
	FeatureCapabilities      = "capabilities"
	FeatureBlockDirtyBitmaps = "block-dirty-bitmaps"
)

var featureOrder = []string{
	FeatureGraphics, FeatureLockState, FeaturePersistent, FeatureNetwork,
	FeatureNBD, FeatureStatistics, FeatureMemoryHotplug, FeatureCPUHotplug,
	FeatureCPU, FeatureAllowReboot, FeatureCapabilities, FeatureBlockDirtyBitmaps,
}

func featureIndex(name string) int {
	for i, f := range featureOrder {
		if f == name {
			return i
		}
	}
	return -1
}

// AddFeature marks a part mandatory, keeping Features in libvirt's order.
// Adding a feature twice has no effect.
func (c *Cookie) AddFeature(name string) {
	idx := featureIndex(name)
	at := len(c.Features)
	for i, f := range c.Features {
		if f == name {
			return
		}
		if fi := featureIndex(f); idx >= 0 && fi > idx && at == len(c.Features) {
			at = i
		}
	}
	c.Features = append(c.Features, "")
	copy(c.Features[at+1:], c.Features[at:])
	c.Features[at] = name
}

// SetPersistent attaches the inactive definition and marks it mandatory,
// as libvirt does for --persistent (qemuMigrationCookieAddPersistent).
// libvirtxml's attribute order is corrected where it is known to differ
// from libvirt's; a caller holding libvirt-formatted text should use
// SetPersistentXML.
func (c *Cookie) SetPersistent(def *libvirtxml.Domain) {
	c.Persistent = def
	c.persistentSrc = kept{}
	c.AddFeature(FeaturePersistent)
}

// SetPersistentXML is SetPersistent for a definition already printed the
// way libvirt prints it (VIR_DOMAIN_XML_INACTIVE|SECURE|MIGRATABLE); the
// cookie then carries that text unchanged.
func (c *Cookie) SetPersistentXML(text string) error {
	def := &libvirtxml.Domain{}
	src, err := keep(text, def)
	if err != nil {
		return err
	}
	c.Persistent, c.persistentSrc = def, src
	c.AddFeature(FeaturePersistent)
	return nil
}

// kept is the text a value was parsed from and what the value marshalled
// to right after parsing: while it still marshals the same, the text is
// printed instead, so a cookie read from libvirt is printed exactly as
// libvirt printed it.
type kept struct {
	text, snapshot string
}

type marshaler interface{ Marshal() (string, error) }

type unmarshaler interface {
	marshaler
	Unmarshal(string) error
}

func keep(text string, v unmarshaler) (kept, error) {
	formatted, err := xmlfmt.Reformat(text)
	if err != nil {
		return kept{}, err
	}
	if err := v.Unmarshal(text); err != nil {
		return kept{}, err
	}
	snap, err := v.Marshal()
	if err != nil {
		return kept{}, err
	}
	return kept{text: formatted, snapshot: snap}, nil
}

// libvirtOrder fixes the attribute orders where libvirtxml's struct order
// differs from libvirt's (virCPUDefFormatBuf, virDomainVideoDefFormat,
// virDomainGraphicsDefFormat).
var libvirtOrder = xmlfmt.Options{AttrOrder: map[string][]string{
	"cpu":         {"mode", "match", "check", "migratable"},
	"cpu/feature": {"policy", "name"},
	"video/model": {"type", "ram", "vram", "vram64", "vgamem", "heads", "primary"},
	"graphics":    {"type", "port", "autoport", "websocket", "listen"},
}}

func (k kept) format(v marshaler) (string, error) {
	out, err := v.Marshal()
	if err != nil {
		return "", err
	}
	if k.text != "" && out == k.snapshot {
		return k.text, nil
	}
	return xmlfmt.ReformatWith(out, libvirtOrder)
}

// escape is virBufferEscapeString's escaping.
var escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", "\"", "&quot;").Replace

// Marshal prints the cookie as libvirt 9.0 does, followed by the NUL byte
// that ends it on the wire.
func (c *Cookie) Marshal() ([]byte, error) {
	var b strings.Builder
	b.WriteString("<qemu-migration>\n")
	fmt.Fprintf(&b, "  <name>%s</name>\n", escape(c.Name))
	fmt.Fprintf(&b, "  <uuid>%s</uuid>\n", escape(c.UUID))
	fmt.Fprintf(&b, "  <hostname>%s</hostname>\n", escape(c.Hostname))
	fmt.Fprintf(&b, "  <hostuuid>%s</hostuuid>\n", escape(c.HostUUID))
	for _, f := range c.Features {
		fmt.Fprintf(&b, "  <feature name='%s'/>\n", escape(f))
	}
	if err := writeRaw(&b, c.Graphics); err != nil {
		return nil, err
	}
	if l := c.LockState; l != nil {
		fmt.Fprintf(&b, "  <lockstate driver='%s'>\n    <leases>%s</leases>\n  </lockstate>\n",
			escape(l.Driver), escape(l.Leases))
	}
	if c.Persistent != nil {
		text, err := c.persistentSrc.format(c.Persistent)
		if err != nil {
			return nil, fmt.Errorf("migration cookie: formatting <domain>: %w", err)
		}
		if err := nest(&b, text); err != nil {
			return nil, fmt.Errorf("migration cookie: formatting <domain>: %w", err)
		}
	}
	if err := writeRaw(&b, c.Network); err != nil {
		return nil, err
	}
	if c.NBD != nil {
		c.NBD.write(&b)
	}
	if c.Stats != nil {
		c.Stats.write(&b)
	}
	if c.CPU != nil {
		text, err := c.cpuSrc.format(c.CPU)
		if err != nil {
			return nil, fmt.Errorf("migration cookie: formatting <cpu>: %w", err)
		}
		if err := nest(&b, text); err != nil {
			return nil, fmt.Errorf("migration cookie: formatting <cpu>: %w", err)
		}
	}
	// Older libvirt printed <allowReboot> between <cpu> and <capabilities>.
	if err := writeRaw(&b, c.AllowReboot); err != nil {
		return nil, err
	}
	if c.Caps != nil {
		// libvirt prints the element open and closed even with no
		// capability in it (qemuMigrationCookieCapsXMLFormat).
		b.WriteString("  <capabilities>\n")
		for _, cp := range c.Caps {
			auto := "no"
			if cp.Auto {
				auto = "yes"
			}
			fmt.Fprintf(&b, "    <cap name='%s' auto='%s'/>\n", escape(cp.Name), auto)
		}
		b.WriteString("  </capabilities>\n")
	}
	if err := writeRaw(&b, c.BlockDirtyBitmaps); err != nil {
		return nil, err
	}
	if g := c.Govirtd; g != nil {
		if g.URI == "" {
			b.WriteString("  <govirtd/>\n")
		} else {
			fmt.Fprintf(&b, "  <govirtd>\n    <uri>%s</uri>\n  </govirtd>\n", escape(g.URI))
		}
	}
	b.WriteString("</qemu-migration>\n")
	b.WriteByte(0)
	return []byte(b.String()), nil
}

func writeRaw(b *strings.Builder, r RawXML) error {
	if r == "" {
		return nil
	}
	// RawXML may have been set by hand: nest reformats it.
	if err := nest(b, string(r)); err != nil {
		return fmt.Errorf("migration cookie: %w", err)
	}
	return nil
}

// nest prints an element one level down, as a child of <qemu-migration>.
// The formatter does it, rather than a prefix on every line, because a
// line may continue a text value, whose content must not change.
func nest(b *strings.Builder, text string) error {
	out, err := xmlfmt.Reformat("<x>" + text + "</x>")
	if err != nil {
		return err
	}
	out = strings.TrimPrefix(out, "<x>\n")
	out = strings.TrimSuffix(out, "</x>\n")
	b.WriteString(out)
	return nil
}

// write is qemuMigrationCookieNBDXMLFormat: the port only when set, and a
// self-closing element when there is nothing inside.
func (n *NBD) write(b *strings.Builder) {
	b.WriteString("  <nbd")
	if n.Port != 0 {
		b.WriteString(" port='" + strconv.Itoa(n.Port) + "'")
	}
	if len(n.Disks) == 0 {
		b.WriteString("/>\n")
		return
	}
	b.WriteString(">\n")
	for _, d := range n.Disks {
		fmt.Fprintf(b, "    <disk target='%s' capacity='%d'/>\n", escape(d.Target), d.Capacity)
	}
	b.WriteString("  </nbd>\n")
}

// The libvirtxml types kept as parsed text must fit kept.
var (
	_ unmarshaler = (*libvirtxml.Domain)(nil)
	_ unmarshaler = (*libvirtxml.DomainCPU)(nil)
)
