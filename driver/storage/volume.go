package storage

import (
	"context"
	"os"
	"sort"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

func (p *pool) volRef(v *volume) libvirt.StorageVol {
	return libvirt.StorageVol{Pool: p.def.Name, Name: v.Name, Key: v.Path}
}

func noVolName(name string) error {
	return compat.Errorf(libvirt.ErrNoStorageVol, compat.FromStorage, "no storage vol with matching name '%s'", name)
}

// volFrom is virStorageVolDefFromVol: the volume's pool, by name, must be
// active and have it. d.mu is held.
func (d *Driver) volFrom(ref libvirt.StorageVol) (*pool, *volume, error) {
	p, err := d.getByName(ref.Pool)
	if err != nil {
		return nil, nil, err
	}
	if !p.active {
		return nil, nil, notActive(p)
	}
	v, ok := p.vols[ref.Name]
	if !ok {
		return nil, nil, noVolName(ref.Name)
	}
	return p, v, nil
}

func inUse(v *volume) error {
	if v.inUse > 0 {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromStorage, "volume '%s' is still in use.", v.Name)
	}
	return nil
}

// reprobe is the dir backend's refreshVol: the volume is read again from
// its file. d.mu is held.
func (d *Driver) reprobe(v *volume) (*volume, error) {
	nv, ok := probe(v.Path)
	if !ok {
		_, err := os.Stat(v.Path)
		if err == nil {
			err = os.ErrInvalid
		}
		return nil, systemError(err, "cannot open volume '%s'", v.Path)
	}
	// In place: a copy or a wipe running without the lock holds v.
	nv.Name, nv.inUse = v.Name, v.inUse
	*v = *nv
	return v, nil
}

// StoragePoolListVolumes implements driver.Storage.
func (d *Driver) StoragePoolListVolumes(ctx context.Context, ref libvirt.StoragePool) ([]libvirt.StorageVol, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.getActive(ref)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(p.vols))
	for n := range p.vols {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]libvirt.StorageVol, 0, len(names))
	for _, n := range names {
		out = append(out, p.volRef(p.vols[n]))
	}
	return out, nil
}

// StorageVolLookupByName implements driver.Storage.
func (d *Driver) StorageVolLookupByName(ctx context.Context, ref libvirt.StoragePool, name string) (libvirt.StorageVol, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.getActive(ref)
	if err != nil {
		return libvirt.StorageVol{}, err
	}
	v, ok := p.vols[name]
	if !ok {
		return libvirt.StorageVol{}, noVolName(name)
	}
	return p.volRef(v), nil
}

// findVol searches the active pools for a volume; d.mu is held.
func (d *Driver) findVol(match func(*volume) bool) (libvirt.StorageVol, bool) {
	for _, p := range d.sorted() {
		if !p.active {
			continue
		}
		for _, v := range p.vols {
			if match(v) {
				return p.volRef(v), true
			}
		}
	}
	return libvirt.StorageVol{}, false
}

// StorageVolLookupByKey implements driver.Storage.
func (d *Driver) StorageVolLookupByKey(ctx context.Context, key string) (libvirt.StorageVol, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.findVol(func(v *volume) bool { return v.Path == key }); ok {
		return r, nil
	}
	return libvirt.StorageVol{}, compat.Errorf(libvirt.ErrNoStorageVol, compat.FromStorage, "no storage vol with matching key %s", key)
}

// StorageVolLookupByPath implements driver.Storage.
func (d *Driver) StorageVolLookupByPath(ctx context.Context, path string) (libvirt.StorageVol, error) {
	clean := sanitizePath(path)
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.findVol(func(v *volume) bool { return v.Path == clean }); ok {
		return r, nil
	}
	if clean == path {
		return libvirt.StorageVol{}, compat.Errorf(libvirt.ErrNoStorageVol, compat.FromStorage, "no storage vol with matching path '%s'", path)
	}
	return libvirt.StorageVol{}, compat.Errorf(libvirt.ErrNoStorageVol, compat.FromStorage, "no storage vol with matching path '%s' (%s)", path, clean)
}

// StorageVolGetInfo implements driver.Storage.
func (d *Driver) StorageVolGetInfo(ctx context.Context, ref libvirt.StorageVol, flags libvirt.StorageVolInfoFlags) (driver.StorageVolInfo, error) {
	if flags&^libvirt.StorageVolGetPhysical != 0 {
		return driver.StorageVolInfo{}, unsupportedFlags(uint32(flags&^libvirt.StorageVolGetPhysical), "storageVolGetInfoFlags")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, v, err := d.volFrom(ref)
	if err != nil {
		return driver.StorageVolInfo{}, err
	}
	if v, err = d.reprobe(v); err != nil {
		return driver.StorageVolInfo{}, err
	}
	info := driver.StorageVolInfo{Type: libvirt.StorageVolFile, Capacity: v.Capacity, Allocation: v.Allocation}
	if v.Type == "dir" {
		info.Type = libvirt.StorageVolDir
	}
	if flags&libvirt.StorageVolGetPhysical != 0 {
		info.Allocation = v.Physical
	}
	return info, nil
}

// StorageVolGetXMLDesc implements driver.Storage.
func (d *Driver) StorageVolGetXMLDesc(ctx context.Context, ref libvirt.StorageVol, flags uint32) (string, error) {
	if flags != 0 {
		return "", unsupportedFlags(flags, "storageVolGetXMLDesc")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, v, err := d.volFrom(ref)
	if err != nil {
		return "", err
	}
	if v, err = d.reprobe(v); err != nil {
		return "", err
	}
	return v.format(), nil
}

// StorageVolGetPath implements driver.Storage.
func (d *Driver) StorageVolGetPath(ctx context.Context, ref libvirt.StorageVol) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, v, err := d.volFrom(ref)
	if err != nil {
		return "", err
	}
	return v.Path, nil
}

// ResolveVolume implements driver.Storage.
func (d *Driver) ResolveVolume(ctx context.Context, poolName, volName string) (driver.VolumeSource, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, v, err := d.volFrom(libvirt.StorageVol{Pool: poolName, Name: volName})
	if err != nil {
		return driver.VolumeSource{}, err
	}
	return driver.VolumeSource{Path: v.Path, Type: "file", Format: v.Format}, nil
}

// StorageVolDelete implements driver.Storage.
func (d *Driver) StorageVolDelete(ctx context.Context, ref libvirt.StorageVol, flags libvirt.StorageVolDeleteFlags) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, v, err := d.volFrom(ref)
	if err != nil {
		return err
	}
	if err := inUse(v); err != nil {
		return err
	}
	if flags != 0 {
		return unsupportedFlags(uint32(flags), "virStorageBackendFileSystemVolDelete")
	}
	if err := os.Remove(v.Path); err != nil && !os.IsNotExist(err) {
		if v.Type == "dir" {
			return systemError(err, "cannot remove directory '%s'", v.Path)
		}
		return systemError(err, "cannot unlink file '%s'", v.Path)
	}
	delete(p.vols, v.Name)
	p.def.Allocation -= min(p.def.Allocation, v.Allocation)
	p.def.Available += v.Allocation
	d.log.Info("storage volume deleted", "pool", p.def.Name, "vol", v.Name)
	return nil
}
