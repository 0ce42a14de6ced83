package qemu

import (
	"context"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/compat/metaxml"
	"github.com/govirtd/govirtd/driver"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
)

var (
	metaDescription = int32(libvirt.DomainMetadataDescription)
	metaTitle       = int32(libvirt.DomainMetadataTitle)
	metaElement     = int32(libvirt.DomainMetadataElement)
)

func errArg(format string, args ...any) error {
	return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone, format, args...)
}

// checkMetadataArgs is virDomainSetMetadata's argument checking.
func checkMetadataArgs(a driver.MetadataArgs) error {
	switch a.Type {
	case metaTitle, metaDescription:
		if a.Type == metaTitle && a.Metadata != nil && strings.Contains(*a.Metadata, "\n") {
			return errArg("metadata title can't contain newlines")
		}
		if a.URI != nil {
			return errArg("uri in virDomainSetMetadata must be NULL")
		}
		if a.Key != nil {
			return errArg("key in virDomainSetMetadata must be NULL")
		}
	case metaElement:
		if a.URI == nil {
			return errArg("uri in virDomainSetMetadata must not be NULL")
		}
		if a.Metadata != nil && a.Key == nil {
			return errArg("key in virDomainSetMetadata must not be NULL")
		}
	}
	return nil
}

// modificationImpact is virDomainObjUpdateModificationImpact: "current"
// becomes live or config, and impossible targets are refused. dom.mu is
// held.
func modificationImpact(dom *domain, flags uint32) (uint32, error) {
	active := dom.id != -1
	if flags&(affectLive|affectConfig) == 0 {
		if active {
			flags |= affectLive
		} else {
			flags |= affectConfig
		}
	}
	if !active && flags&affectLive != 0 {
		return 0, errNotRunning()
	}
	if !dom.persistent && flags&affectConfig != 0 {
		return 0, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromDomain, "transient domains do not have any persistent config")
	}
	return flags, nil
}

func errUnknownMetadataType(typ int32) error {
	return compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "unknown metadata type '%d'", typ)
}

// withMetadata is virDomainDefSetMetadata on a copy of def.
func withMetadata(def *libvirtxml.Domain, a driver.MetadataArgs) (*libvirtxml.Domain, error) {
	if a.Type < metaDescription || a.Type > metaElement {
		return nil, errUnknownMetadataType(a.Type)
	}
	c, err := cloneDef(def)
	if err != nil {
		return nil, err
	}
	text := ""
	if a.Metadata != nil {
		text = *a.Metadata
	}
	switch a.Type {
	case metaDescription:
		c.Description = text
	case metaTitle:
		c.Title = text
	case metaElement:
		if c.Metadata == nil && a.Metadata == nil {
			break // nothing to remove
		}
		inner := ""
		if c.Metadata != nil {
			inner = c.Metadata.XML
		}
		key := ""
		if a.Key != nil {
			key = *a.Key
		}
		inner, err = metaxml.Set(inner, a.Metadata, key, *a.URI)
		if err != nil {
			return nil, err
		}
		c.Metadata = &libvirtxml.DomainMetadata{XML: inner}
	}
	return c, nil
}

// SetMetadata implements driver.DomainEdits (qemuDomainSetMetadata): the
// live definition is saved in the domain's status, the persistent one in
// the definition store, and a metadata-change event follows.
func (d *Driver) SetMetadata(ctx context.Context, ref libvirt.Domain, a driver.MetadataArgs) error {
	if err := checkMetadataArgs(a); err != nil {
		return err
	}
	if a.Flags&^(affectLive|affectConfig) != 0 {
		return errUnsupportedFlagsIn(a.Flags, "virDomainObjSetMetadata")
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	err = withJob(ctx, dom, "remoteDispatchDomainSetMetadata", func() error {
		dom.mu.Lock()
		flags, err := modificationImpact(dom, a.Flags)
		live, def, name := dom.live, dom.def, dom.name
		dom.mu.Unlock()
		if err != nil {
			return err
		}
		var newLive, newDef *libvirtxml.Domain
		if flags&affectLive != 0 {
			if newLive, err = withMetadata(live, a); err != nil {
				return err
			}
		}
		if flags&affectConfig != 0 && def != nil {
			if newDef, err = withMetadata(def, a); err != nil {
				return err
			}
		}
		if newLive != nil {
			dom.mu.Lock()
			dom.live = newLive
			dom.mu.Unlock()
			if err := d.saveStatus(dom); err != nil {
				return err
			}
		}
		if newDef != nil {
			text, err := domainxml.Format(newDef, domainxml.FormatOptions{Inactive: true, Secure: true})
			if err != nil {
				return err
			}
			if err := d.store.SaveDefinition(name, text); err != nil {
				return err
			}
			dom.mu.Lock()
			dom.def = newDef
			dom.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	uri := ""
	if a.Type == metaElement {
		uri = *a.URI
	}
	d.emit(driver.Event{ID: libvirt.DomainEventIDMetadataChange, Dom: dom.ref(), MetadataType: a.Type, MetadataURI: uri})
	return nil
}

// GetMetadata implements driver.DomainEdits (virDomainObjGetMetadata).
func (d *Driver) GetMetadata(ctx context.Context, ref libvirt.Domain, typ int32, uri *string, flags uint32) (string, error) {
	if flags&affectLive != 0 && flags&affectConfig != 0 {
		return "", errArg("Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive")
	}
	switch typ {
	case metaTitle, metaDescription:
		if uri != nil {
			return "", errArg("uri in virDomainGetMetadata must be NULL")
		}
	case metaElement:
		if uri == nil {
			return "", errArg("uri in virDomainGetMetadata must not be NULL")
		}
	}
	if flags&^(affectLive|affectConfig) != 0 {
		return "", errUnsupportedFlagsIn(flags, "virDomainObjGetMetadata")
	}
	dom, err := d.get(ref)
	if err != nil {
		return "", err
	}
	if typ < metaDescription || typ > metaElement {
		return "", errUnknownMetadataType(typ)
	}
	dom.mu.Lock()
	flags, err = modificationImpact(dom, flags)
	def := dom.def
	if flags&affectLive != 0 {
		def = dom.live
	}
	dom.mu.Unlock()
	if err != nil {
		return "", err
	}
	var out string
	found := false
	switch typ {
	case metaDescription:
		out, found = def.Description, def.Description != ""
	case metaTitle:
		out, found = def.Title, def.Title != ""
	case metaElement:
		if def.Metadata != nil {
			if out, found, err = metaxml.Get(def.Metadata.XML, *uri); err != nil {
				return "", err
			}
		}
	}
	if !found {
		return "", compat.Errorf(libvirt.ErrNoDomainMetadata, compat.FromDomain, "Requested metadata element is not present")
	}
	return out, nil
}
