package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// fromXMLUtil is VIR_FROM_XML, libvirt's XML utility functions.
const fromXMLUtil = compat.Domain(5)

// backendFor is virStorageBackendForType: only the dir backend is built
// into govirtd, and libvirt's answer for a type whose backend is missing
// is an internal error naming the type.
func backendFor(def *poolDef) error {
	if def.Type == "dir" {
		return nil
	}
	num := 0
	for i, t := range poolTypes {
		if t == def.Type {
			num = i
		}
	}
	return compat.Errorf(libvirt.ErrInternalError, compat.FromStorage, "missing backend for pool type %d (%s)", num, def.Type)
}

// add is virStoragePoolObjListAdd: a definition whose target another dir
// pool has is a conflict; a UUID names one pool and a name one UUID. With
// live, def is what the pool will run with and the persistent definition
// it replaces is kept for when it stops; with checkLive, a running pool
// is not replaced. d.mu is held.
func (d *Driver) add(def *poolDef, live, checkLive bool) (*pool, bool, error) {
	for _, p := range d.pools {
		if p.def.Name != def.Name && p.def.Type == def.Type && p.def.Path == def.Path {
			return nil, false, compat.Errorf(libvirt.ErrOperationFailed, compat.FromStorage, "Storage source conflict with pool: '%s'", p.def.Name)
		}
	}
	if p := d.byUUID(def.UUID); p != nil {
		if p.def.Name != def.Name {
			return nil, false, compat.Errorf(libvirt.ErrOperationFailed, compat.FromStorage,
				"pool '%s' is already defined with uuid %s", p.def.Name, compat.FormatUUID(p.def.UUID))
		}
		if checkLive && p.active {
			return nil, false, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromStorage, "pool is already active as '%s'", p.def.Name)
		}
		if p.active {
			p.newDef = def
		} else {
			if p.newDef == nil && live {
				p.newDef = p.def
			}
			p.def = def
		}
		return p, false, nil
	}
	if p, ok := d.pools[def.Name]; ok {
		return nil, false, compat.Errorf(libvirt.ErrOperationFailed, compat.FromStorage,
			"pool '%s' already exists with uuid %s", def.Name, compat.FormatUUID(p.def.UUID))
	}
	p := &pool{def: def}
	d.pools[def.Name] = p
	return p, true, nil
}

// updateInactive is virStoragePoolUpdateInactive, for a pool that just
// stopped: a transient pool goes away, a persistent one takes the
// definition it was given while it ran. d.mu is held.
func (d *Driver) updateInactive(p *pool) {
	switch {
	case !p.persistent:
		delete(d.pools, p.def.Name)
	case p.newDef != nil:
		p.def, p.newDef = p.newDef, nil
	}
}

// StoragePoolDefineXML implements driver.Storage.
func (d *Driver) StoragePoolDefineXML(ctx context.Context, doc string, flags uint32) (libvirt.StoragePool, error) {
	if flags&^uint32(libvirt.StoragePoolDefineValidate) != 0 {
		return libvirt.StoragePool{}, unsupportedFlags(uint32(flags&^uint32(libvirt.StoragePoolDefineValidate)), "storagePoolDefineXML")
	}
	def, err := parsePool(doc)
	if err != nil {
		return libvirt.StoragePool{}, err
	}
	// The name becomes a line of the saved file's header comment.
	if strings.Contains(def.Name, "\n") {
		return libvirt.StoragePool{}, compat.Errorf(libvirt.ErrXMLDetail, fromXMLUtil, "invalid char in name: \n")
	}
	if err := backendFor(def); err != nil {
		return libvirt.StoragePool{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p, isNew, err := d.add(def, false, false)
	if err != nil {
		return libvirt.StoragePool{}, err
	}
	saved := p.def
	if p.newDef != nil {
		saved = p.newDef
	}
	if err := d.saveConfig(saved); err != nil {
		if isNew {
			delete(d.pools, def.Name)
		}
		return libvirt.StoragePool{}, err
	}
	p.persistent = true
	d.log.Info("storage pool defined", "pool", def.Name)
	d.emitLifecycle(p, libvirt.StoragePoolEventDefined)
	return p.ref(), nil
}

// buildFlags turns pool-create's WITH_BUILD flags into pool-build's, as
// libvirt does (OVERWRITE winning over NO_OVERWRITE); ok is false when no
// build is asked for.
func buildFlags(flags libvirt.StoragePoolCreateFlags) (libvirt.StoragePoolBuildFlags, bool) {
	switch {
	case flags&libvirt.StoragePoolCreateWithBuildOverwrite != 0:
		return libvirt.StoragePoolBuildOverwrite, true
	case flags&libvirt.StoragePoolCreateWithBuildNoOverwrite != 0:
		return libvirt.StoragePoolBuildNoOverwrite, true
	case flags&libvirt.StoragePoolCreateWithBuild != 0:
		return 0, true
	}
	return 0, false
}

const createFlags = libvirt.StoragePoolCreateWithBuild | libvirt.StoragePoolCreateWithBuildOverwrite |
	libvirt.StoragePoolCreateWithBuildNoOverwrite

// StoragePoolCreateXML implements driver.Storage.
func (d *Driver) StoragePoolCreateXML(ctx context.Context, doc string, flags libvirt.StoragePoolCreateFlags) (libvirt.StoragePool, error) {
	if flags&^createFlags != 0 {
		return libvirt.StoragePool{}, unsupportedFlags(uint32(flags&^createFlags), "storagePoolCreateXML")
	}
	def, err := parsePool(doc)
	if err != nil {
		return libvirt.StoragePool{}, err
	}
	if err := backendFor(def); err != nil {
		return libvirt.StoragePool{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p, _, err := d.add(def, true, true)
	if err != nil {
		return libvirt.StoragePool{}, err
	}
	if bf, ok := buildFlags(flags); ok {
		if err := d.buildDir(p.def, bf); err != nil {
			d.updateInactive(p)
			return libvirt.StoragePool{}, err
		}
	}
	if err := d.startLocked(p); err != nil {
		d.updateInactive(p)
		return libvirt.StoragePool{}, err
	}
	d.log.Info("storage pool created", "pool", def.Name)
	d.emitLifecycle(p, libvirt.StoragePoolEventStarted)
	return p.ref(), nil
}

// startLocked starts a dir pool: there is nothing to set up, only the
// directory to scan, which must exist. d.mu is held.
func (d *Driver) startLocked(p *pool) error {
	if err := d.refreshLocked(p); err != nil {
		return err
	}
	p.active = true
	d.saveState(p)
	return nil
}

// StoragePoolCreate implements driver.Storage: virStoragePoolCreate starts
// a defined pool.
func (d *Driver) StoragePoolCreate(ctx context.Context, ref libvirt.StoragePool, flags libvirt.StoragePoolCreateFlags) error {
	if flags&^createFlags != 0 {
		return unsupportedFlags(uint32(flags&^createFlags), "storagePoolCreate")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return err
	}
	if err := backendFor(p.def); err != nil {
		return err
	}
	if p.active {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromStorage, "storage pool '%s' is already active", p.def.Name)
	}
	if bf, ok := buildFlags(flags); ok {
		if err := d.buildDir(p.def, bf); err != nil {
			return err
		}
	}
	if err := d.startLocked(p); err != nil {
		return err
	}
	d.log.Info("storage pool started", "pool", p.def.Name)
	d.emitLifecycle(p, libvirt.StoragePoolEventStarted)
	return nil
}

// StoragePoolBuild implements driver.Storage.
func (d *Driver) StoragePoolBuild(ctx context.Context, ref libvirt.StoragePool, flags libvirt.StoragePoolBuildFlags) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return err
	}
	if err := backendFor(p.def); err != nil {
		return err
	}
	if p.active {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromStorage, "storage pool '%s' is already active", p.def.Name)
	}
	if err := d.buildDir(p.def, flags); err != nil {
		return err
	}
	d.emitLifecycle(p, libvirt.StoragePoolEventCreated)
	return nil
}

// defaultPoolMode is VIR_STORAGE_DEFAULT_POOL_PERM_MODE, the mode of a
// directory the build creates when the definition gives none.
const defaultPoolMode = 0o711

// buildDir is virStorageBackendFileSystemBuild for a dir pool: the
// target directory is created (its parents too) or, if it exists, given
// the definition's mode and owner. OVERWRITE and NO_OVERWRITE are for
// formatting file systems and change nothing for a directory.
func (d *Driver) buildDir(def *poolDef, flags libvirt.StoragePoolBuildFlags) error {
	if flags&^(libvirt.StoragePoolBuildOverwrite|libvirt.StoragePoolBuildNoOverwrite) != 0 {
		return unsupportedFlags(uint32(flags&^(libvirt.StoragePoolBuildOverwrite|libvirt.StoragePoolBuildNoOverwrite)), "virStorageBackendFileSystemBuild")
	}
	if flags&libvirt.StoragePoolBuildOverwrite != 0 && flags&libvirt.StoragePoolBuildNoOverwrite != 0 {
		return exclusiveFlags("VIR_STORAGE_POOL_BUILD_OVERWRITE", "VIR_STORAGE_POOL_BUILD_NO_OVERWRITE")
	}
	parent := filepath.Dir(def.Path)
	if err := os.MkdirAll(parent, 0o777); err != nil {
		return systemError(err, "cannot create path '%s'", parent)
	}
	mode := def.Perms.Mode
	_, statErr := os.Stat(def.Path)
	if mode == -1 && statErr != nil {
		mode = defaultPoolMode
	}
	if statErr != nil {
		if err := os.Mkdir(def.Path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return systemError(err, "cannot create directory '%s'", def.Path)
		}
	}
	if mode != -1 {
		// mkdir's mode passes through the umask; libvirt sets it after.
		if err := os.Chmod(def.Path, os.FileMode(mode)); err != nil {
			return systemError(err, "cannot set mode of '%s' to %04o", def.Path, mode)
		}
	}
	if def.Perms.Owner != -1 || def.Perms.Group != -1 {
		if err := os.Lchown(def.Path, def.Perms.Owner, def.Perms.Group); err != nil {
			return systemError(err, "cannot chown '%s' to (%d, %d)", def.Path, def.Perms.Owner, def.Perms.Group)
		}
	}
	return nil
}

// busy is libvirt's refusal while volumes of the pool are being created,
// cloned, wiped or streamed without the lock.
func busy(p *pool) error {
	if p.jobs > 0 {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromStorage, "pool '%s' has asynchronous jobs running.", p.def.Name)
	}
	return nil
}

// StoragePoolDestroy implements driver.Storage.
func (d *Driver) StoragePoolDestroy(ctx context.Context, ref libvirt.StoragePool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return err
	}
	if err := backendFor(p.def); err != nil {
		return err
	}
	if !p.active {
		return notActive(p)
	}
	if err := busy(p); err != nil {
		return err
	}
	p.vols, p.active = nil, false
	d.removeState(p.def.Name)
	d.log.Info("storage pool destroyed", "pool", p.def.Name)
	d.emitLifecycle(p, libvirt.StoragePoolEventStopped)
	d.updateInactive(p)
	return nil
}

// StoragePoolDelete implements driver.Storage: the target directory is
// removed, which rmdir refuses while it has files.
func (d *Driver) StoragePoolDelete(ctx context.Context, ref libvirt.StoragePool, flags libvirt.StoragePoolDeleteFlags) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return err
	}
	if err := backendFor(p.def); err != nil {
		return err
	}
	if p.active {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromStorage, "storage pool '%s' is still active", p.def.Name)
	}
	if err := busy(p); err != nil {
		return err
	}
	if flags != 0 {
		return unsupportedFlags(uint32(flags), "virStorageBackendFileSystemDelete")
	}
	if err := os.Remove(p.def.Path); err != nil {
		return systemError(err, "failed to remove pool '%s'", p.def.Path)
	}
	d.log.Info("storage pool deleted", "pool", p.def.Name, "path", p.def.Path)
	d.emitLifecycle(p, libvirt.StoragePoolEventDeleted)
	return nil
}

// StoragePoolUndefine implements driver.Storage.
func (d *Driver) StoragePoolUndefine(ctx context.Context, ref libvirt.StoragePool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return err
	}
	if p.active {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromStorage, "storage pool '%s' is still active", p.def.Name)
	}
	if err := busy(p); err != nil {
		return err
	}
	if !p.persistent {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromStorage, "no config file for %s", p.def.Name)
	}
	if err := os.Remove(d.configPath(p.def.Name)); err != nil {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromStorage, "cannot remove config for %s", p.def.Name)
	}
	if err := removeFile(d.autostartPath(p.def.Name)); err != nil {
		d.log.Error("failed to delete autostart link", "pool", p.def.Name, "err", err)
	}
	delete(d.pools, p.def.Name)
	d.log.Info("storage pool undefined", "pool", p.def.Name)
	d.emitLifecycle(p, libvirt.StoragePoolEventUndefined)
	return nil
}

// StoragePoolRefresh implements driver.Storage. A pool whose directory
// cannot be scanned any more stops, as libvirt's does.
func (d *Driver) StoragePoolRefresh(ctx context.Context, ref libvirt.StoragePool, flags uint32) error {
	if flags != 0 {
		return unsupportedFlags(flags, "storagePoolRefresh")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.get(ref)
	if err != nil {
		return err
	}
	if err := backendFor(p.def); err != nil {
		return err
	}
	if !p.active {
		return notActive(p)
	}
	if err := busy(p); err != nil {
		return err
	}
	if err := d.refreshLocked(p); err != nil {
		p.vols, p.active = nil, false
		d.removeState(p.def.Name)
		d.emitLifecycle(p, libvirt.StoragePoolEventStopped)
		d.updateInactive(p)
		return err
	}
	d.emitRefresh(p)
	return nil
}
