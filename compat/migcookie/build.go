package migcookie

import (
	"slices"

	"libvirt.org/go/libvirtxml"
)

// Identity is what every cookie starts with: the domain, and the host
// making the cookie.
type Identity struct {
	// Name and UUID of the domain; Name is the source's name even when
	// the destination renames the guest (--dname).
	Name, UUID string
	// Hostname and HostUUID of the host making the cookie.
	Hostname, HostUUID string
}

// New makes a cookie with only the identity, as libvirt sends from
// Prepare and Finish of an offline migration.
func New(id Identity) *Cookie {
	return &Cookie{Name: id.Name, UUID: id.UUID, Hostname: id.Hostname, HostUUID: id.HostUUID}
}

// ForBegin is the source's Begin cookie: lock state marked mandatory
// (with libvirt's default "nop" lock manager there is no <lockstate>
// element, only the feature), the guest CPU as QEMU runs it, and the
// source's migration capabilities (Caps(Source, ...)). Pass nil caps for
// an offline migration, whose Begin cookie has none.
func ForBegin(id Identity, cpu *libvirtxml.DomainCPU, caps []MigrationCap) *Cookie {
	c := New(id)
	c.AddFeature(FeatureLockState)
	c.CPU = cpu
	c.Caps = caps
	return c
}

// ForPrepare is the destination's Prepare cookie: its migration
// capabilities (Caps(Destination, ...)); nil caps for an offline
// migration.
func ForPrepare(id Identity, caps []MigrationCap) *Cookie {
	c := New(id)
	c.Caps = caps
	return c
}

// ForPerform is the source's Perform cookie: the statistics of the
// completed job. For --persistent, add the definition with SetPersistent
// or SetPersistentXML.
func ForPerform(id Identity, stats *Statistics) *Cookie {
	c := New(id)
	c.Stats = stats
	return c
}

// ForFinish is the destination's Finish cookie: the source's statistics
// recomputed with the destination's clock (Statistics.AtDestination).
func ForFinish(id Identity, stats *Statistics) *Cookie {
	return ForPerform(id, stats)
}

// Party is the side of a migration making a cookie.
type Party int

// The two sides.
const (
	Source Party = iota
	Destination
)

// capOrder is libvirt 9.0's qemuMigrationCapability enum, the order it
// prints <cap> elements in.
var capOrder = []string{
	"xbzrle", "auto-converge", "rdma-pin-all", "postcopy-ram", "compress",
	"pause-before-switchover", "late-block-activate", "multifd",
	"dirty-bitmaps", "return-path", "zero-copy-send",
}

// KnownCaps lists the migration capabilities libvirt 9.0 knows, in its
// order. QEMU 7.2 supports all of them.
func KnownCaps() []string { return slices.Clone(capOrder) }

// Caps is the <capabilities> list a side sends (qemuMigrationCookieAddCaps):
// the capabilities its QEMU supports, in libvirt's order, with auto='yes'
// for the one libvirt always turns on for that side
// (qemuMigrationParamsGetAlwaysOnCaps): pause-before-switchover on the
// source, late-block-activate on the destination. Names libvirt 9.0 does
// not know are left out, as libvirt can only print its own.
func Caps(p Party, supported []string) []MigrationCap {
	always := "pause-before-switchover"
	if p == Destination {
		always = "late-block-activate"
	}
	out := []MigrationCap{}
	for _, name := range capOrder {
		if slices.Contains(supported, name) {
			out = append(out, MigrationCap{Name: name, Auto: name == always})
		}
	}
	return out
}
