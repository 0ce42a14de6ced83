package storage

import (
	"context"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// poolTypeFlags are the virConnectListAllStoragePoolsFlags that select
// pools by type, in poolTypes' order.
var poolTypeFlags = []libvirt.ConnectListAllStoragePoolsFlags{
	libvirt.ConnectListStoragePoolsDir, libvirt.ConnectListStoragePoolsFs, libvirt.ConnectListStoragePoolsNetfs,
	libvirt.ConnectListStoragePoolsLogical, libvirt.ConnectListStoragePoolsDisk, libvirt.ConnectListStoragePoolsIscsi,
	libvirt.ConnectListStoragePoolsIscsiDirect, libvirt.ConnectListStoragePoolsScsi, libvirt.ConnectListStoragePoolsMpath,
	libvirt.ConnectListStoragePoolsRbd, libvirt.ConnectListStoragePoolsSheepdog, libvirt.ConnectListStoragePoolsGluster,
	libvirt.ConnectListStoragePoolsZfs, libvirt.ConnectListStoragePoolsVstorage,
}

func allListFlags() libvirt.ConnectListAllStoragePoolsFlags {
	f := libvirt.ConnectListStoragePoolsActive | libvirt.ConnectListStoragePoolsInactive |
		libvirt.ConnectListStoragePoolsPersistent | libvirt.ConnectListStoragePoolsTransient |
		libvirt.ConnectListStoragePoolsAutostart | libvirt.ConnectListStoragePoolsNoAutostart
	for _, t := range poolTypeFlags {
		f |= t
	}
	return f
}

func typeFlag(t string) libvirt.ConnectListAllStoragePoolsFlags {
	for i, n := range poolTypes {
		if n == t {
			return poolTypeFlags[i]
		}
	}
	return 0
}

// ListAllStoragePools implements driver.Storage with virStoragePoolMatch's
// filters: each pair filters only when one of its two flags is given, and
// type flags keep the pools of the types named.
func (d *Driver) ListAllStoragePools(ctx context.Context, flags libvirt.ConnectListAllStoragePoolsFlags) ([]libvirt.StoragePool, error) {
	if flags&^allListFlags() != 0 {
		return nil, unsupportedFlags(uint32(flags&^allListFlags()), "storageConnectListAllStoragePools")
	}
	match := func(on bool, yes, no libvirt.ConnectListAllStoragePoolsFlags) bool {
		if flags&(yes|no) == 0 {
			return true
		}
		return on && flags&yes != 0 || !on && flags&no != 0
	}
	var types libvirt.ConnectListAllStoragePoolsFlags
	for _, t := range poolTypeFlags {
		types |= t
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []libvirt.StoragePool{}
	for _, p := range d.sorted() {
		if !match(p.active, libvirt.ConnectListStoragePoolsActive, libvirt.ConnectListStoragePoolsInactive) ||
			!match(p.persistent, libvirt.ConnectListStoragePoolsPersistent, libvirt.ConnectListStoragePoolsTransient) ||
			!match(p.autostart, libvirt.ConnectListStoragePoolsAutostart, libvirt.ConnectListStoragePoolsNoAutostart) {
			continue
		}
		if flags&types != 0 && flags&typeFlag(p.def.Type) == 0 {
			continue
		}
		out = append(out, p.ref())
	}
	return out, nil
}

// StoragePoolNames implements driver.Storage.
func (d *Driver) StoragePoolNames(active bool) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []string{}
	for _, p := range d.sorted() {
		if p.active == active {
			out = append(out, p.def.Name)
		}
	}
	return out
}

// StoragePoolLookupByName implements driver.Storage.
func (d *Driver) StoragePoolLookupByName(ctx context.Context, name string) (libvirt.StoragePool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.getByName(name)
	if err != nil {
		return libvirt.StoragePool{}, err
	}
	return p.ref(), nil
}

// StoragePoolLookupByUUID implements driver.Storage.
func (d *Driver) StoragePoolLookupByUUID(ctx context.Context, uuid libvirt.UUID) (libvirt.StoragePool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.byUUID(uuid)
	if p == nil {
		return libvirt.StoragePool{}, compat.Errorf(libvirt.ErrNoStoragePool, compat.FromStorage,
			"no storage pool with matching uuid '%s'", compat.FormatUUID(uuid))
	}
	return p.ref(), nil
}

// StoragePoolLookupByVolume implements driver.Storage: the pool the
// volume names, by name, as libvirt does.
func (d *Driver) StoragePoolLookupByVolume(ctx context.Context, v libvirt.StorageVol) (libvirt.StoragePool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.getByName(v.Pool)
	if err != nil {
		return libvirt.StoragePool{}, err
	}
	return p.ref(), nil
}

// StoragePoolLookupByTargetPath implements driver.Storage: the active
// pool whose target is path.
func (d *Driver) StoragePoolLookupByTargetPath(ctx context.Context, path string) (libvirt.StoragePool, error) {
	clean := sanitizePath(path)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.sorted() {
		if p.active && p.def.Path == clean {
			return p.ref(), nil
		}
	}
	if clean == path {
		return libvirt.StoragePool{}, compat.Errorf(libvirt.ErrNoStoragePool, compat.FromStorage, "no storage pool with matching target path '%s'", path)
	}
	return libvirt.StoragePool{}, compat.Errorf(libvirt.ErrNoStoragePool, compat.FromStorage, "no storage pool with matching target path '%s' (%s)", path, clean)
}

// StoragePoolGetXMLDesc implements driver.Storage: the running
// definition, or with VIR_STORAGE_XML_INACTIVE the one given while the
// pool ran, if there is one.
func (d *Driver) StoragePoolGetXMLDesc(ctx context.Context, ref libvirt.StoragePool, flags libvirt.StorageXMLFlags) (string, error) {
	if flags&^libvirt.StorageXMLInactive != 0 {
		return "", unsupportedFlags(uint32(flags&^libvirt.StorageXMLInactive), "storagePoolGetXMLDesc")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return "", err
	}
	def := p.def
	if flags&libvirt.StorageXMLInactive != 0 && p.newDef != nil {
		def = p.newDef
	}
	return def.format(), nil
}

// StoragePoolGetInfo implements driver.Storage.
func (d *Driver) StoragePoolGetInfo(ctx context.Context, ref libvirt.StoragePool) (driver.StoragePoolInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return driver.StoragePoolInfo{}, err
	}
	if err := backendFor(p.def); err != nil {
		return driver.StoragePoolInfo{}, err
	}
	info := driver.StoragePoolInfo{State: libvirt.StoragePoolInactive,
		Capacity: p.def.Capacity, Allocation: p.def.Allocation, Available: p.def.Available}
	if p.active {
		info.State = libvirt.StoragePoolRunning
	}
	return info, nil
}

// StoragePoolGetAutostart implements driver.Storage.
func (d *Driver) StoragePoolGetAutostart(ctx context.Context, ref libvirt.StoragePool) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return false, err
	}
	return p.autostart, nil
}

// StoragePoolSetAutostart implements driver.Storage.
func (d *Driver) StoragePoolSetAutostart(ctx context.Context, ref libvirt.StoragePool, on bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return err
	}
	if !p.persistent {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromStorage, "pool has no config file")
	}
	if p.autostart == on {
		return nil
	}
	if err := d.saveAutostart(p.def.Name, on); err != nil {
		return err
	}
	p.autostart = on
	return nil
}

// StoragePoolIsActive implements driver.Storage.
func (d *Driver) StoragePoolIsActive(ctx context.Context, ref libvirt.StoragePool) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return false, err
	}
	return p.active, nil
}

// StoragePoolIsPersistent implements driver.Storage.
func (d *Driver) StoragePoolIsPersistent(ctx context.Context, ref libvirt.StoragePool) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return false, err
	}
	return p.persistent, nil
}
