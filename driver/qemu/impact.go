package qemu

import (
	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
)

// virDomainModificationImpact bits.
const (
	affectLive   = uint32(libvirt.DomainAffectLive)
	affectConfig = uint32(libvirt.DomainAffectConfig)
)

// impactDefs is libvirt's virDomainObjGetDefs: the live and persistent
// definitions a change with these flags applies to (nil for one it
// leaves alone). AFFECT_CURRENT means live when running, config when not.
func (dom *domain) impactDefs(flags uint32) (live, config *libvirtxml.Domain, err error) {
	dom.mu.Lock()
	defer dom.mu.Unlock()
	active := dom.id != -1
	if flags&(affectLive|affectConfig) == 0 {
		if active {
			flags |= affectLive
		} else {
			flags |= affectConfig
		}
	}
	if flags&affectLive != 0 {
		if !active {
			return nil, nil, errNotRunning()
		}
		live = dom.live
	}
	if flags&affectConfig != 0 {
		if !dom.persistent || dom.def == nil {
			return nil, nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromDomain, "transient domains do not have any persistent config")
		}
		config = dom.def
	}
	return live, config, nil
}

// impactDef is virDomainObjGetOneDef: the one definition a query with
// these flags reads.
func (dom *domain) impactDef(flags uint32) (*libvirtxml.Domain, error) {
	if flags&affectLive != 0 && flags&affectConfig != 0 {
		return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive")
	}
	live, config, err := dom.impactDefs(flags)
	if err != nil {
		return nil, err
	}
	if live != nil {
		return live, nil
	}
	return config, nil
}

// saveConfig writes a changed persistent definition and installs it in
// place of old (definitions are never modified in place).
func (d *Driver) saveConfig(dom *domain, old, changed *libvirtxml.Domain) error {
	text, err := domainxml.Format(changed, domainxml.FormatOptions{Inactive: true, Secure: true})
	if err != nil {
		return err
	}
	dom.mu.Lock()
	defer dom.mu.Unlock()
	if err := d.store.SaveDefinition(dom.name, text); err != nil {
		return err
	}
	if dom.def == old {
		dom.def = changed
	}
	return nil
}

// saveLive makes changed the running domain's definition, in place of old
// (unless the domain moved on meanwhile), and records it in the status
// file.
func (d *Driver) saveLive(dom *domain, old, changed *libvirtxml.Domain) error {
	dom.mu.Lock()
	if dom.live == old {
		dom.live = changed
	}
	dom.mu.Unlock()
	return d.saveStatus(dom)
}
