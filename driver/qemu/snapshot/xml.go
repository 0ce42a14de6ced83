// Package snapshot is the QEMU driver's domain snapshot metadata: the
// snapshot XML (libvirt's domainsnapshot documents), the parent/child
// tree of one domain's snapshots, the current snapshot, and the on-disk
// store of the definitions under the driver's state directory. It knows
// nothing of QEMU: taking, reverting and deleting the snapshots in the
// images is the driver's job.
package snapshot

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/xmlfmt"
	"github.com/govirtd/govirtd/compat/xmlwf"
)

// Snapshot states as the XML spells them (virDomainSnapshotState).
const (
	StateRunning      = "running"
	StatePaused       = "paused"
	StateShutoff      = "shutoff"
	StateDiskSnapshot = "disk-snapshot"
)

// Locations of a snapshot's memory or disk (virDomainSnapshotLocation).
const (
	LocationDefault  = ""
	LocationNo       = "no"
	LocationInternal = "internal"
	LocationExternal = "external"
	LocationManual   = "manual"
)

var validStates = map[string]bool{
	"nostate": true, StateRunning: true, "blocked": true, StatePaused: true, "shutdown": true,
	StateShutoff: true, "crashed": true, "pmsuspended": true, StateDiskSnapshot: true,
}

var validLocations = map[string]bool{LocationNo: true, LocationInternal: true, LocationExternal: true, LocationManual: true}

// ParseOptions are libvirt's VIR_DOMAIN_SNAPSHOT_PARSE_* flags.
type ParseOptions struct {
	// Redefine reads a complete definition (VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE):
	// name, state and creation time are required and the domain is kept.
	Redefine bool
	// Offline: the snapshot cannot hold memory (a disk-only snapshot, or
	// the domain is shut off).
	Offline bool
	// Now gives the creation time (time.Now when nil).
	Now func() time.Time
}

func xmlErr(format string, args ...any) error {
	return compat.Errorf(libvirt.ErrXMLError, compat.FromDomainSnapshot, format, args...)
}

// Parse reads a snapshot definition as virDomainSnapshotDefParseString
// does. Without Redefine, a missing name becomes the creation time in
// seconds, as libvirt names snapshots, and any <domain> is ignored.
func Parse(text string, o ParseOptions) (*libvirtxml.DomainSnapshot, error) {
	if err := wellFormed(text); err != nil {
		return nil, err
	}
	def := &libvirtxml.DomainSnapshot{}
	if err := def.Unmarshal(text); err != nil {
		return nil, xmlErr("%s", strings.TrimPrefix(err.Error(), "xml: "))
	}
	// libvirt keeps none of what the client says about these.
	def.Active, def.Cookie = nil, nil
	if def.Name == "" && o.Redefine {
		return nil, xmlErr("a redefined snapshot must have a name")
	}
	offline := o.Offline
	if o.Redefine {
		if def.CreationTime == "" {
			return nil, xmlErr("missing creationTime from existing snapshot")
		}
		if _, err := strconv.ParseInt(def.CreationTime, 10, 64); err != nil {
			return nil, xmlErr("missing creationTime from existing snapshot")
		}
		if def.State == "" {
			return nil, xmlErr("missing state from existing snapshot")
		}
		if !validStates[def.State] {
			return nil, xmlErr("Invalid state '%s' in domain snapshot XML", def.State)
		}
		offline = def.State == StateShutoff || def.State == StateDiskSnapshot
		if def.Parent != nil && def.Parent.Name == "" {
			def.Parent = nil
		}
	} else {
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		t := now().Unix()
		def.CreationTime = strconv.FormatInt(t, 10)
		if def.Name == "" {
			def.Name = def.CreationTime
		}
		def.State, def.Parent, def.Domain, def.InactiveDomain = "", nil, nil, nil
	}
	if err := parseMemory(def, o.Redefine, offline); err != nil {
		return nil, err
	}
	if def.Disks != nil {
		for i := range def.Disks.Disks {
			if err := parseDisk(&def.Disks.Disks[i]); err != nil {
				return nil, err
			}
		}
	}
	return def, nil
}

func parseMemory(def *libvirtxml.DomainSnapshot, redefine, offline bool) error {
	m := def.Memory
	switch {
	case m != nil && m.File != "" && !strings.HasPrefix(m.File, "/"):
		return xmlErr("memory snapshot file path (%s) must be absolute", m.File)
	case m != nil && m.Snapshot != "":
		if !validLocations[m.Snapshot] {
			return compat.Errorf(libvirt.ErrXMLError, compat.FromXML, "Invalid value for attribute 'snapshot' in element 'memory': '%s'.", m.Snapshot)
		}
		if m.File != "" && m.Snapshot != LocationExternal {
			return xmlErr("memory filename '%s' requires external snapshot", m.File)
		}
		if m.File == "" && m.Snapshot == LocationExternal {
			return xmlErr("external memory snapshots require a filename")
		}
	case m != nil && m.File != "":
		m.Snapshot = LocationExternal
	case redefine:
		loc := LocationInternal
		if offline {
			loc = LocationNo
		}
		def.Memory = &libvirtxml.DomainSnapshotMemory{Snapshot: loc}
	default:
		def.Memory = nil
	}
	if offline && def.Memory != nil && def.Memory.Snapshot != LocationNo {
		return xmlErr("memory state cannot be saved with offline or disk-only snapshot")
	}
	return nil
}

func parseDisk(d *libvirtxml.DomainSnapshotDisk) error {
	if d.Name == "" {
		return xmlErr("missing name from disk snapshot element")
	}
	if d.Snapshot != "" && !validLocations[d.Snapshot] {
		return compat.Errorf(libvirt.ErrXMLError, compat.FromXML, "Invalid value for attribute 'snapshot' in element 'disk': '%s'.", d.Snapshot)
	}
	// libvirtxml always makes a source; one naming nothing is none.
	if s := d.Source; s != nil && (s.File == nil || s.File.File == "") && s.Block == nil && s.Network == nil && s.Dir == nil && s.Volume == nil {
		d.Source = nil
	}
	if d.Source != nil && d.Source.File == nil {
		return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromDomainSnapshot, "disk '%s': only file sources are supported by govirtd", d.Name)
	}
	format := ""
	if d.Driver != nil {
		format = d.Driver.Type
		if format != "" && format != "qcow2" && format != "raw" && format != "qed" {
			return xmlErr("unknown disk snapshot driver '%s'", format)
		}
	}
	if d.Source != nil && d.Source.File.File != "" && !strings.HasPrefix(d.Source.File.File, "/") {
		return xmlErr("disk snapshot image path '%s' must be absolute", d.Source.File.File)
	}
	if d.Snapshot == "" && (d.Source != nil || format != "") {
		d.Snapshot = LocationExternal
	}
	if d.Source != nil && d.Snapshot != LocationExternal {
		return xmlErr("file '%s' for disk '%s' requires use of external snapshot mode", d.Source.File.File, d.Name)
	}
	return nil
}

// wellFormed checks syntax and the root element first, so errors read as
// libvirt's XML errors do.
func wellFormed(doc string) error {
	if strings.TrimSpace(doc) == "" {
		return compat.Errorf(libvirt.ErrXMLError, compat.FromDomainSnapshot, "failed to parse xml document")
	}
	root, err := xmlwf.Check(doc, "(domain_snapshot)", compat.FromDomainSnapshot)
	if err == nil && root != "domainsnapshot" {
		err = compat.Errorf(libvirt.ErrXMLError, compat.FromXML, "expecting root element of 'domainsnapshot', not '%s'", root)
	}
	return err
}

// IsExternal is virDomainSnapshotIsExternal: memory or a disk outside
// the domain's images.
func IsExternal(def *libvirtxml.DomainSnapshot) bool {
	if def.Memory != nil && def.Memory.Snapshot == LocationExternal {
		return true
	}
	if def.Disks != nil {
		for _, d := range def.Disks.Disks {
			if d.Snapshot == LocationExternal {
				return true
			}
		}
	}
	return false
}

// ParentName is the name of the snapshot's parent, "" for a root.
func ParentName(def *libvirtxml.DomainSnapshot) string {
	if def.Parent == nil {
		return ""
	}
	return def.Parent.Name
}

// The libvirt order of a snapshot's elements (virDomainSnapshotDefFormat)
// and of a snapshot disk's attributes, where libvirtxml's field order
// differs.
var formatOptions = xmlfmt.Options{
	ChildOrder: map[string][]string{
		"domainsnapshot": {"name", "description", "state", "parent", "creationTime", "memory", "disks", "domain", "inactiveDomain", "cookie", "active"},
	},
	AttrOrder: map[string][]string{"disks/disk": {"name", "snapshot", "type"}},
}

// Format prints a snapshot as virsh snapshot-dumpxml shows it: the
// public elements, with domainXML (the domain definition, formatted by
// the caller as libvirt formats a domain) in place of <domain>.
func Format(def *libvirtxml.DomainSnapshot, domainXML string) (string, error) {
	c := *def
	c.Domain, c.InactiveDomain, c.Active, c.Cookie = nil, nil, nil, nil
	raw, err := c.Marshal()
	if err != nil {
		return "", fmt.Errorf("format snapshot %s: %w", def.Name, err)
	}
	out, err := xmlfmt.ReformatWith(raw, formatOptions)
	if err != nil {
		return "", fmt.Errorf("format snapshot %s: %w", def.Name, err)
	}
	if domainXML == "" {
		return out, nil
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(domainXML, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	end := strings.LastIndex(out, "</domainsnapshot>")
	if end < 0 {
		// An element with no children printed self-closed.
		out = strings.TrimSuffix(strings.TrimRight(out, "\n"), "/>") + ">\n"
		return out + b.String() + "</domainsnapshot>\n", nil
	}
	return out[:end] + b.String() + out[end:], nil
}
