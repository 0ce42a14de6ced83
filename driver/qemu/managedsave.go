package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/savefile"
)

// virsh managedsave: a save to an image the driver keeps per persistent
// domain (store.ManagedSavePath); the next start of the domain restores
// from it and deletes it, as libvirt's does. domain.managedSave mirrors
// whether the image exists, so that lists and queries need no disk.

// ManagedSave implements driver.DomainSaves.
func (d *Driver) ManagedSave(ctx context.Context, ref libvirt.Domain, flags uint32) error {
	if err := checkSaveFlags(flags, saveBypassCache|saveRunning|savePaused); err != nil {
		return err
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainManagedSave", func() error {
		dom.mu.Lock()
		active, persistent := dom.id != -1, dom.persistent
		dom.mu.Unlock()
		if !active {
			return errNotRunning()
		}
		if !persistent {
			return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "cannot do managed save for transient domain")
		}
		if err := d.saveTo(ctx, dom, d.store.ManagedSavePath(dom.name), "", flags); err != nil {
			return err
		}
		dom.mu.Lock()
		dom.managedSave = true
		dom.mu.Unlock()
		return nil
	})
}

// HasManagedSaveImage implements driver.DomainSaves.
func (d *Driver) HasManagedSaveImage(ctx context.Context, ref libvirt.Domain, flags uint32) (bool, error) {
	if flags != 0 {
		return false, errUnsupportedFlags(flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return false, err
	}
	dom.mu.Lock()
	defer dom.mu.Unlock()
	return dom.managedSave, nil
}

// ManagedSaveRemove implements driver.DomainSaves.
func (d *Driver) ManagedSaveRemove(ctx context.Context, ref libvirt.Domain, flags uint32) error {
	if flags != 0 {
		return errUnsupportedFlags(flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainManagedSaveRemove", func() error {
		return d.removeManagedSave(dom)
	})
}

// removeManagedSave deletes the image, if any. The caller holds the job.
func (d *Driver) removeManagedSave(dom *domain) error {
	path := d.store.ManagedSavePath(dom.name)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "Failed to remove managed save file '%s': %v", path, unwrapSyscall(err))
	}
	dom.mu.Lock()
	dom.managedSave = false
	dom.mu.Unlock()
	return nil
}

// managedImage reads the domain's managed save image, with libvirt's
// error when it has none.
func (d *Driver) managedImage(dom *domain) (string, *savefile.Image, error) {
	dom.mu.Lock()
	has := dom.managedSave
	dom.mu.Unlock()
	path := d.store.ManagedSavePath(dom.name)
	if !has {
		return "", nil, compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "domain does not have managed save image")
	}
	im, err := savefile.Read(path)
	return path, im, err
}

// ManagedSaveGetXMLDesc implements driver.DomainSaves (virsh
// managedsave-dumpxml).
func (d *Driver) ManagedSaveGetXMLDesc(ctx context.Context, ref libvirt.Domain, flags uint32) (string, error) {
	if flags&^uint32(libvirt.DomainSaveImageXMLSecure) != 0 {
		return "", errUnsupportedFlags(flags)
	}
	dom, err := d.get(ref)
	if err != nil {
		return "", err
	}
	_, im, err := d.managedImage(dom)
	if err != nil {
		return "", err
	}
	return d.imageXML(im, flags)
}

// ManagedSaveDefineXML implements driver.DomainSaves (virsh
// managedsave-define).
func (d *Driver) ManagedSaveDefineXML(ctx context.Context, ref libvirt.Domain, xml string, flags uint32) error {
	if err := checkSaveFlags(flags, saveRunning|savePaused); err != nil {
		return err
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainManagedSaveDefineXML", func() error {
		path, im, err := d.managedImage(dom)
		if err != nil {
			return err
		}
		return d.redefineImage(path, im, xml, flags)
	})
}

// startFromManagedSave restores a domain being started from its managed
// save image and deletes the image once the guest is back; a failed
// restore keeps the image and fails the start, as libvirt does (virsh
// start --force-boot discards it instead). The caller holds dom's job.
func (d *Driver) startFromManagedSave(ctx context.Context, dom *domain, paused bool) error {
	path := d.store.ManagedSavePath(dom.name)
	f, im, err := savefile.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	def, _, err := d.parseDefinition(im.XML)
	if err != nil {
		return err
	}
	if err := d.restoreFrom(ctx, dom, def, f, im.WasRunning && !paused, paused); err != nil {
		return fmt.Errorf("restore %s from its managed save image: %w", dom.name, err)
	}
	if err := os.Remove(path); err != nil {
		d.log.Warn("cannot remove the managed save image", "domain", dom.name, "path", path, "err", err)
		return nil
	}
	dom.mu.Lock()
	dom.managedSave = false
	dom.mu.Unlock()
	return nil
}

// bootOrRestore starts a defined domain: from its managed save image if
// it has one (unless forceBoot, which deletes the image), else booted.
// The caller holds dom's job.
func (d *Driver) bootOrRestore(ctx context.Context, dom *domain, paused, forceBoot bool) error {
	dom.mu.Lock()
	def, saved := dom.def, dom.managedSave
	dom.mu.Unlock()
	if def == nil {
		return errAlreadyRunning()
	}
	if dom.active() {
		return errAlreadyRunning()
	}
	if saved && !forceBoot {
		return d.startFromManagedSave(ctx, dom, paused)
	}
	if saved {
		if err := d.removeManagedSave(dom); err != nil {
			return err
		}
	}
	return d.start(ctx, dom, def, startOptions{paused: paused, reason: libvirt.DomainRunningBooted})
}
