package storage

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/xmlwf"
)

// poolTypes are libvirt's virStoragePoolType names. Only 'dir' has a
// backend in govirtd; the others parse, and are refused as libvirt
// refuses a pool type whose backend is not built in.
var poolTypes = []string{"dir", "fs", "netfs", "logical", "disk", "iscsi", "iscsi-direct",
	"scsi", "mpath", "rbd", "sheepdog", "gluster", "zfs", "vstorage"}

// perms is a <permissions> element; -1 is "not given", as libvirt's
// (mode_t)-1.
type perms struct {
	Mode, Owner, Group int
	Label              string
}

var noPerms = perms{Mode: -1, Owner: -1, Group: -1}

// poolDef is a parsed pool definition, as libvirt's virStoragePoolDef for
// a dir pool.
type poolDef struct {
	Type string
	Name string
	UUID libvirt.UUID
	// Capacity, Allocation and Available are output only: libvirt fills
	// them from statvfs when the pool is refreshed and never parses them.
	Capacity, Allocation, Available uint64
	Path                            string
	Perms                           perms
}

func xmlErr(format string, args ...any) error {
	return compat.Errorf(libvirt.ErrXMLError, compat.FromStorage, format, args...)
}

// parsePool reads pool XML as virStoragePoolDefParse does, with its error
// codes and words.
func parsePool(doc string) (*poolDef, error) {
	if err := wellFormed(doc, "pool", "(storage_pool_definition)"); err != nil {
		return nil, err
	}
	var x libvirtxml.StoragePool
	if err := x.Unmarshal(doc); err != nil {
		return nil, xmlErr("%v", err)
	}
	if x.Type == "" {
		return nil, xmlErr("storage pool missing type attribute")
	}
	known := false
	for _, t := range poolTypes {
		known = known || t == x.Type
	}
	if !known {
		return nil, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromStorage, "unknown storage pool type %s", x.Type)
	}
	d := &poolDef{Type: x.Type, Name: x.Name, Perms: noPerms}
	if d.Name == "" {
		return nil, xmlErr("missing pool source name element")
	}
	if strings.Contains(d.Name, "/") {
		return nil, xmlErr("name %s cannot contain '/'", d.Name)
	}
	if x.UUID == "" {
		if _, err := rand.Read(d.UUID[:]); err != nil {
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromStorage, "unable to generate uuid")
		}
		d.UUID[6] = d.UUID[6]&0x0f | 0x40
		d.UUID[8] = d.UUID[8]&0x3f | 0x80
	} else {
		u, err := compat.ParseUUID(x.UUID)
		if err != nil {
			return nil, xmlErr("malformed uuid element")
		}
		d.UUID = u
	}
	if x.Type != "dir" {
		// The other types' sources are not read: their definitions are
		// refused before they are used (see backendFor).
		return d, nil
	}
	if x.Target == nil || x.Target.Path == "" {
		return nil, xmlErr("missing storage pool target path")
	}
	d.Path = sanitizePath(x.Target.Path)
	if !strings.HasPrefix(d.Path, "/") {
		return nil, xmlErr("storage pool target path '%s' must be absolute", x.Target.Path)
	}
	if x.Target.Permissions != nil {
		p, err := parsePerms(x.Target.Permissions.Mode, x.Target.Permissions.Owner, x.Target.Permissions.Group)
		if err != nil {
			return nil, err
		}
		p.Label = x.Target.Permissions.Label
		d.Perms = p
	}
	return d, nil
}

// parsePerms is virStorageDefParsePerms: an octal mode of at most 0777,
// numeric owner and group, -1 meaning "leave as it is".
func parsePerms(mode, owner, group string) (perms, error) {
	p := noPerms
	if s := strings.TrimSpace(mode); s != "" {
		m, err := strconv.ParseInt(s, 8, 32)
		if err != nil || m < 0 || m&^0o777 != 0 {
			return p, xmlErr("malformed octal mode")
		}
		p.Mode = int(m)
	}
	for _, f := range []struct {
		s    string
		v    *int
		what string
	}{{owner, &p.Owner, "owner"}, {group, &p.Group, "group"}} {
		s := strings.TrimSpace(f.s)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < -1 {
			return p, xmlErr("malformed %s element", f.what)
		}
		*f.v = int(n)
	}
	return p, nil
}

// sanitizePath is virFileSanitizePath: no doubled and no trailing '/'.
func sanitizePath(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	return p
}

// format writes the definition as virStoragePoolDefFormat does for a dir
// pool.
func (d *poolDef) format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<pool type='%s'>\n", d.Type)
	fmt.Fprintf(&b, "  <name>%s</name>\n", escape(d.Name))
	fmt.Fprintf(&b, "  <uuid>%s</uuid>\n", compat.FormatUUID(d.UUID))
	fmt.Fprintf(&b, "  <capacity unit='bytes'>%d</capacity>\n", d.Capacity)
	fmt.Fprintf(&b, "  <allocation unit='bytes'>%d</allocation>\n", d.Allocation)
	fmt.Fprintf(&b, "  <available unit='bytes'>%d</available>\n", d.Available)
	b.WriteString("  <source>\n  </source>\n")
	b.WriteString("  <target>\n")
	fmt.Fprintf(&b, "    <path>%s</path>\n", escape(d.Path))
	writePerms(&b, d.Perms, "    ")
	b.WriteString("  </target>\n")
	b.WriteString("</pool>\n")
	return b.String()
}

// writePerms writes a <permissions> element, if anything in it is set.
func writePerms(b *strings.Builder, p perms, indent string) {
	if p == noPerms {
		return
	}
	fmt.Fprintf(b, "%s<permissions>\n", indent)
	if p.Mode != -1 {
		fmt.Fprintf(b, "%s  <mode>0%o</mode>\n", indent, p.Mode)
	}
	if p.Owner != -1 {
		fmt.Fprintf(b, "%s  <owner>%d</owner>\n", indent, p.Owner)
	}
	if p.Group != -1 {
		fmt.Fprintf(b, "%s  <group>%d</group>\n", indent, p.Group)
	}
	if p.Label != "" {
		fmt.Fprintf(b, "%s  <label>%s</label>\n", indent, escape(p.Label))
	}
	fmt.Fprintf(b, "%s</permissions>\n", indent)
}

// escaper is virBufferEscapeString's escaping; a carriage return is kept
// as a reference so that it survives a parse.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", "\"", "&quot;", "\r", "&#xD;")

func escape(s string) string { return escaper.Replace(s) }

// wellFormed checks that doc is one XML document whose root is root,
// with libxml2's words for what is wrong, as virXMLParse reports them.
func wellFormed(doc, root, what string) error {
	got, err := xmlwf.Check(doc, what, compat.FromStorage)
	if err == nil && got != root {
		err = xmlErr("unexpected root element <%s>, expecting <%s>", got, root)
	}
	return err
}
