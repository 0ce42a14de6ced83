package secret

import (
	"crypto/rand"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/xmlfmt"
	"github.com/govirtd/govirtd/compat/xmlwf"
)

// def is a parsed secret definition, as libvirt's virSecretDef.
type def struct {
	UUID        libvirt.UUID
	Ephemeral   bool
	Private     bool
	Description string
	UsageType   libvirt.SecretUsageType
	UsageID     string // "" for usage type none
}

// usageNames are libvirt's virSecretUsageType names, by value.
var usageNames = map[libvirt.SecretUsageType]string{
	libvirt.SecretUsageTypeNone:   "none",
	libvirt.SecretUsageTypeVolume: "volume",
	libvirt.SecretUsageTypeCeph:   "ceph",
	libvirt.SecretUsageTypeIscsi:  "iscsi",
	libvirt.SecretUsageTypeTLS:    "tls",
	libvirt.SecretUsageTypeVtpm:   "vtpm",
}

// parseDef reads secret XML as libvirt 9.0's virSecretDefParse does
// (src/conf/secret_conf.c), with its error codes and words: a missing
// <uuid> gets a random one, ephemeral and private default to "no", and
// each usage type needs its own identifying element.
func parseDef(doc string) (*def, error) {
	if err := wellFormed(doc); err != nil {
		return nil, err
	}
	var x libvirtxml.Secret
	if err := x.Unmarshal(doc); err != nil {
		return nil, compat.Errorf(libvirt.ErrXMLError, compat.FromSecret, "%s", err)
	}
	d := &def{Description: x.Description}
	var err error
	if d.Ephemeral, err = yesNo(x.Ephemeral, "ephemeral"); err != nil {
		return nil, err
	}
	if d.Private, err = yesNo(x.Private, "private"); err != nil {
		return nil, err
	}
	if strings.TrimSpace(x.UUID) == "" {
		if _, err := rand.Read(d.UUID[:]); err != nil {
			return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromSecret, "Failed to generate UUID: %v", err)
		}
		d.UUID[6] = d.UUID[6]&0x0f | 0x40 // version 4
		d.UUID[8] = d.UUID[8]&0x3f | 0x80 // RFC 4122 variant
	} else if d.UUID, err = compat.ParseUUID(x.UUID); err != nil {
		return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromSecret, "malformed uuid element")
	}
	if x.Usage != nil {
		if err := parseUsage(x.Usage, d); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func yesNo(v, attr string) (bool, error) {
	switch v {
	case "", "no":
		return false, nil
	case "yes":
		return true, nil
	}
	return false, compat.Errorf(libvirt.ErrXMLError, compat.FromSecret, "invalid value of '%s'", attr)
}

func parseUsage(u *libvirtxml.SecretUsage, d *def) error {
	if u.Type == "" {
		return compat.Errorf(libvirt.ErrXMLError, compat.FromSecret, "unknown secret usage type")
	}
	var id, missing string
	switch u.Type {
	case "none":
		d.UsageType = libvirt.SecretUsageTypeNone
		return nil
	case "volume":
		d.UsageType, id, missing = libvirt.SecretUsageTypeVolume, u.Volume, "volume usage specified, but volume path is missing"
	case "ceph":
		d.UsageType, id, missing = libvirt.SecretUsageTypeCeph, u.Name, "Ceph usage specified, but name is missing"
	case "iscsi":
		d.UsageType, id, missing = libvirt.SecretUsageTypeIscsi, u.Target, "iSCSI usage specified, but target is missing"
	case "tls":
		d.UsageType, id, missing = libvirt.SecretUsageTypeTLS, u.Name, "TLS usage specified, but name is missing"
	case "vtpm":
		d.UsageType, id, missing = libvirt.SecretUsageTypeVtpm, u.Name, "vTPM usage specified, but name is missing"
	default:
		return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromSecret, "unknown secret usage type %s", u.Type)
	}
	// Blank counts as missing: the formatted definition prints blank text
	// as an empty element, which would not parse again (libvirt keeps a
	// blank id; nobody names a volume or a target with whitespace only).
	if strings.TrimSpace(id) == "" {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromSecret, "%s", missing)
	}
	d.UsageID = id
	return nil
}

// wellFormed checks the document's syntax and root element first, so that
// errors name a line as libvirt's "(definition_of_secret):LINE: ..." ones do
// (libvirt prints libxml2's text after that prefix).
func wellFormed(doc string) error {
	root, err := xmlwf.Check(doc, "(definition_of_secret)", compat.FromSecret)
	if err == nil && root != "secret" {
		err = compat.Errorf(libvirt.ErrXMLError, compat.FromSecret, "expecting root element of 'secret', not '%s'", root)
	}
	return err
}

// format prints a definition as virSecretDefFormat does: both attributes
// always, then uuid, description and usage, single-quoted.
func (d *def) format() (string, error) {
	x := libvirtxml.Secret{
		Ephemeral:   map[bool]string{true: "yes", false: "no"}[d.Ephemeral],
		Private:     map[bool]string{true: "yes", false: "no"}[d.Private],
		UUID:        compat.FormatUUID(d.UUID),
		Description: d.Description,
	}
	if d.UsageType != libvirt.SecretUsageTypeNone {
		u := &libvirtxml.SecretUsage{Type: usageNames[d.UsageType]}
		switch d.UsageType {
		case libvirt.SecretUsageTypeVolume:
			u.Volume = d.UsageID
		case libvirt.SecretUsageTypeIscsi:
			u.Target = d.UsageID
		default:
			u.Name = d.UsageID
		}
		x.Usage = u
	}
	doc, err := x.Marshal()
	if err != nil {
		return "", err
	}
	out, err := xmlfmt.ReformatWith(doc, xmlfmt.Options{
		AttrOrder:  map[string][]string{"secret": {"ephemeral", "private"}},
		ChildOrder: map[string][]string{"secret": {"uuid", "description", "usage"}},
	})
	if err != nil {
		return "", err
	}
	return out, nil
}
