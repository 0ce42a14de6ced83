package qemu

import (
	"context"
	"os"
	"sort"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/snapshot"
	"github.com/govirtd/govirtd/driver/qemu/swtpm"
)

// all returns every domain, sorted by name. The sorted list is kept until
// a domain comes or goes, since listing is what clients do most.
func (d *Driver) all() []*domain {
	d.mu.RLock()
	out := d.sorted
	d.mu.RUnlock()
	if out != nil {
		return out
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sorted == nil {
		list := make([]*domain, 0, len(d.byUUID))
		for _, dom := range d.byUUID {
			list = append(list, dom)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
		d.sorted = list
	}
	return d.sorted
}

// addLocked registers a domain; d.mu is held.
func (d *Driver) addLocked(dom *domain) {
	d.byUUID[dom.uuid] = dom
	d.byName[dom.name] = dom
	d.sorted = nil
	d.mapPeak = max(d.mapPeak, len(d.byUUID))
}

// removeLocked forgets a domain; d.mu is held.
func (d *Driver) removeLocked(dom *domain) {
	if d.byUUID[dom.uuid] == dom {
		delete(d.byUUID, dom.uuid)
	}
	if d.byName[dom.name] == dom {
		delete(d.byName, dom.name)
	}
	d.sorted = nil
	// Go maps keep their size once grown: after thousands of domains come
	// and go, copy them so the memory goes back.
	if d.mapPeak > 256 && len(d.byUUID) < d.mapPeak/4 {
		d.byUUID = shrunk(d.byUUID)
		d.byName = shrunk(d.byName)
		d.mapPeak = len(d.byUUID)
	}
}

// shrunk copies m into a map sized for what it holds now (maps.Clone
// would copy the grown table as it is).
func shrunk[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// get finds a domain from its wire identity, by UUID as libvirt does.
func (d *Driver) get(ref libvirt.Domain) (*domain, error) {
	d.mu.RLock()
	dom := d.byUUID[ref.UUID]
	d.mu.RUnlock()
	if dom == nil {
		return nil, errNoDomainUUID(ref.UUID, ref.Name)
	}
	return dom, nil
}

func (d *Driver) add(dom *domain) {
	d.mu.Lock()
	d.addLocked(dom)
	d.mu.Unlock()
}

func (d *Driver) remove(dom *domain) {
	d.mu.Lock()
	d.removeLocked(dom)
	d.mu.Unlock()
}

// LookupByName implements driver.Domains.
func (d *Driver) LookupByName(ctx context.Context, name string) (libvirt.Domain, error) {
	d.mu.RLock()
	dom := d.byName[name]
	d.mu.RUnlock()
	if dom == nil {
		return libvirt.Domain{}, errNoDomainName(name)
	}
	return dom.ref(), nil
}

// LookupByUUID implements driver.Domains.
func (d *Driver) LookupByUUID(ctx context.Context, uuid libvirt.UUID) (libvirt.Domain, error) {
	d.mu.RLock()
	dom := d.byUUID[uuid]
	d.mu.RUnlock()
	if dom == nil {
		return libvirt.Domain{}, compat.Errorf(libvirt.ErrNoDomain, compat.FromQEMU, "no domain with matching uuid '%s'", formatUUID(uuid))
	}
	return dom.ref(), nil
}

// LookupByID implements driver.Domains.
func (d *Driver) LookupByID(ctx context.Context, id int32) (libvirt.Domain, error) {
	for _, dom := range d.all() {
		if r := dom.ref(); r.ID == id && id != -1 {
			return r, nil
		}
	}
	return libvirt.Domain{}, errNoDomainID(id)
}

// ListAllDomains implements driver.Domains, with libvirt's filter flags:
// each pair of opposite flags filters only when one of the two is given.
func (d *Driver) ListAllDomains(ctx context.Context, flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, error) {
	all := d.all()
	out := make([]libvirt.Domain, 0, len(all))
	for _, dom := range all {
		dom.mu.Lock()
		if matchesListFlags(dom, flags, d.snaps) {
			out = append(out, libvirt.Domain{Name: dom.name, UUID: dom.uuid, ID: dom.id})
		}
		dom.mu.Unlock()
	}
	return out, nil
}

// matchesListFlags tells whether dom passes the filter; dom.mu is held.
func matchesListFlags(dom *domain, f libvirt.ConnectListAllDomainsFlags, snaps *snapshot.Store) bool {
	active := dom.id != -1
	persistent := dom.persistent
	state := dom.state
	autostart := dom.autostart
	pair := func(yes, no libvirt.ConnectListAllDomainsFlags, v bool) bool {
		if f&(yes|no) == 0 || f&(yes|no) == yes|no {
			return true
		}
		return (f&yes != 0 && v) || (f&no != 0 && !v)
	}
	if !pair(libvirt.ConnectListDomainsActive, libvirt.ConnectListDomainsInactive, active) ||
		!pair(libvirt.ConnectListDomainsPersistent, libvirt.ConnectListDomainsTransient, persistent) ||
		!pair(libvirt.ConnectListDomainsAutostart, libvirt.ConnectListDomainsNoAutostart, autostart) ||
		// No checkpoints exist.
		!pair(libvirt.ConnectListDomainsManagedsave, libvirt.ConnectListDomainsNoManagedsave, dom.managedSave) ||
		!pair(libvirt.ConnectListDomainsHasSnapshot, libvirt.ConnectListDomainsNoSnapshot, snaps.Count(dom.name) > 0) ||
		!pair(libvirt.ConnectListDomainsHasCheckpoint, libvirt.ConnectListDomainsNoCheckpoint, false) {
		return false
	}
	stateFlags := libvirt.ConnectListDomainsRunning | libvirt.ConnectListDomainsPaused | libvirt.ConnectListDomainsShutoff | libvirt.ConnectListDomainsOther
	if f&stateFlags != 0 {
		switch state {
		case libvirt.DomainRunning:
			return f&libvirt.ConnectListDomainsRunning != 0
		case libvirt.DomainPaused:
			return f&libvirt.ConnectListDomainsPaused != 0
		case libvirt.DomainShutoff:
			return f&libvirt.ConnectListDomainsShutoff != 0
		default:
			return f&libvirt.ConnectListDomainsOther != 0
		}
	}
	return true
}

// parseDefinition turns client XML into a checked definition with
// libvirt's defaults filled in.
func (d *Driver) parseDefinition(xml string) (*libvirtxml.Domain, libvirt.UUID, error) {
	def, err := domainxml.Parse(xml)
	if err != nil {
		return nil, libvirt.UUID{}, err
	}
	if err := domainxml.Validate(def, d.host); err != nil {
		return nil, libvirt.UUID{}, err
	}
	if err := domainxml.ApplyDefaults(def, d.host); err != nil {
		return nil, libvirt.UUID{}, err
	}
	uuid, err := parseUUID(def.UUID)
	if err != nil {
		return nil, libvirt.UUID{}, compat.Errorf(libvirt.ErrXMLError, compat.FromDomain, "malformed uuid element")
	}
	return def, uuid, nil
}

// checkClash refuses a definition whose name or UUID belongs to another
// domain, with libvirt's wording. It returns the existing domain with the
// same name and UUID, if any. Call with d.mu held.
func (d *Driver) checkClash(name string, uuid libvirt.UUID) (*domain, error) {
	if dom := d.byUUID[uuid]; dom != nil {
		if dom.name != name {
			return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromDomain, "domain '%s' is already defined with uuid %s", dom.name, formatUUID(uuid))
		}
		return dom, nil
	}
	if dom := d.byName[name]; dom != nil {
		return nil, compat.Errorf(libvirt.ErrOperationFailed, compat.FromDomain, "domain '%s' already exists with uuid %s", name, formatUUID(dom.uuid))
	}
	return nil, nil
}

// DefineXML implements driver.Domains.
func (d *Driver) DefineXML(ctx context.Context, xml string, flags uint32) (libvirt.Domain, error) {
	// VIR_DOMAIN_DEFINE_VALIDATE (1) asks for schema validation; the
	// parser's checks are what govirtd has.
	if flags&^1 != 0 {
		return libvirt.Domain{}, errUnsupportedFlags(flags)
	}
	def, uuid, err := d.parseDefinition(xml)
	if err != nil {
		return libvirt.Domain{}, err
	}
	text, err := domainxml.Format(def, domainxml.FormatOptions{Inactive: true, Secure: true})
	if err != nil {
		return libvirt.Domain{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	existing, err := d.checkClash(def.Name, uuid)
	if err != nil {
		return libvirt.Domain{}, err
	}
	// Write first: a definition is only reported defined once it is on disk.
	if err := d.store.SaveDefinition(def.Name, text); err != nil {
		return libvirt.Domain{}, err
	}
	detail := libvirt.DomainEventDefinedUpdated
	dom := existing
	if dom == nil {
		dom = newDomain(def.Name, uuid)
		d.addLocked(dom)
		detail = libvirt.DomainEventDefinedAdded
	}
	dom.mu.Lock()
	dom.def = def
	dom.persistent = true
	ref := libvirt.Domain{Name: dom.name, UUID: dom.uuid, ID: dom.id}
	dom.mu.Unlock()
	d.emitLifecycle(ref, libvirt.DomainEventDefined, int32(detail))
	return ref, nil
}

// Undefine implements driver.Domains. A running domain stays running,
// transient, until it stops.
func (d *Driver) Undefine(ctx context.Context, ref libvirt.Domain, flags uint32) error {
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	// NVRAM and checkpoint flags have nothing to act on: govirtd keeps
	// none of those.
	d.mu.Lock()
	defer d.mu.Unlock()
	dom.mu.Lock()
	if !dom.persistent {
		dom.mu.Unlock()
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromDomain, "cannot undefine transient domain")
	}
	// A running domain keeps its snapshots while it runs on, transient;
	// an inactive one loses them only when asked to.
	if n := d.snaps.Count(dom.name); n > 0 && dom.id == -1 {
		if flags&uint32(libvirt.DomainUndefineSnapshotsMetadata) == 0 {
			dom.mu.Unlock()
			return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "cannot delete inactive domain with %d snapshots", n)
		}
		if err := d.snaps.RemoveAll(dom.name); err != nil {
			dom.mu.Unlock()
			return err
		}
	}
	if dom.managedSave {
		if flags&uint32(libvirt.DomainUndefineManagedSave) == 0 {
			dom.mu.Unlock()
			return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "Refusing to undefine while domain managed save image exists")
		}
		path := d.store.ManagedSavePath(dom.name)
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			dom.mu.Unlock()
			return compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "Failed to remove managed save file '%s': %v", path, unwrapSyscall(err))
		}
		dom.managedSave = false
	}
	if err := d.store.RemoveDefinition(dom.name); err != nil {
		dom.mu.Unlock()
		return err
	}
	dom.persistent = false
	dom.def = nil
	dom.autostart = false
	active := dom.id != -1
	r := libvirt.Domain{Name: dom.name, UUID: dom.uuid, ID: dom.id}
	dom.mu.Unlock()
	if !active {
		d.removeLocked(dom)
		// The emulated TPM's state goes with the definition, unless
		// the caller keeps it (virsh undefine --keep-tpm).
		if flags&uint32(libvirt.DomainUndefineKeepTpm) == 0 {
			if err := swtpm.Remove(d.store.SwtpmRoot(), formatUUID(r.UUID)); err != nil {
				d.log.Warn("remove TPM state", "domain", r.Name, "err", err)
			}
		}
	}
	d.emitLifecycle(r, libvirt.DomainEventUndefined, int32(libvirt.DomainEventUndefinedRemoved))
	return nil
}
