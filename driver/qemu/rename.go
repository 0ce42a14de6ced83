package qemu

import (
	"context"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
)

// Rename implements driver.DomainEdits (qemuDomainRename): only a shut
// off persistent domain can be renamed; it keeps its UUID, and clients see
// it undefined under the old name and defined under the new one.
func (d *Driver) Rename(ctx context.Context, ref libvirt.Domain, newName *string, flags uint32) error {
	if newName == nil {
		return errArg("new_name in virDomainRename must not be NULL")
	}
	if *newName == "" {
		return errArg("string new_name in virDomainRename must not be empty")
	}
	if flags != 0 {
		return errUnsupportedFlagsIn(flags, "qemuDomainRename")
	}
	dom, err := d.get(ref)
	if err != nil {
		return err
	}
	var oldRef, newRef libvirt.Domain
	renamed := false
	err = withJob(ctx, dom, "remoteDispatchDomainRename", func() error {
		dom.mu.Lock()
		active, persistent, oldName, def, saved := dom.id != -1, dom.persistent, dom.name, dom.def, dom.managedSave
		dom.mu.Unlock()
		if active {
			return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "cannot rename active domain")
		}
		// The image is named after the domain.
		if saved {
			return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "domain with a managed saved state can't be renamed")
		}
		if !persistent || def == nil {
			return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "cannot rename a transient domain")
		}
		if oldName == *newName {
			return nil // virDomainObjListRename: nothing to do
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.byName[*newName] != nil {
			return compat.Errorf(libvirt.ErrOperationFailed, compat.FromDomain, "domain with name '%s' already exists", *newName)
		}
		if strings.Contains(*newName, "/") {
			return compat.Errorf(libvirt.ErrXMLError, compat.FromQEMU, "name %s cannot contain '/'", *newName)
		}
		c, err := cloneDef(def)
		if err != nil {
			return err
		}
		c.Name = *newName
		text, err := domainxml.Format(c, domainxml.FormatOptions{Inactive: true, Secure: true})
		if err != nil {
			return err
		}
		if err := d.store.RenameDefinition(oldName, *newName, text); err != nil {
			return err
		}
		// The snapshots are stored under the domain's name.
		if err := d.snaps.Rename(oldName, *newName); err != nil {
			d.log.Warn("move snapshot metadata", "domain", oldName, "to", *newName, "err", err)
		}
		d.removeLocked(dom)
		dom.mu.Lock()
		dom.name = *newName
		dom.def = c
		oldRef = libvirt.Domain{Name: oldName, UUID: dom.uuid, ID: dom.id}
		newRef = libvirt.Domain{Name: dom.name, UUID: dom.uuid, ID: dom.id}
		dom.mu.Unlock()
		d.addLocked(dom)
		renamed = true
		return nil
	})
	if err != nil || !renamed {
		return err
	}
	d.emitLifecycle(oldRef, libvirt.DomainEventUndefined, int32(libvirt.DomainEventUndefinedRenamed))
	d.emitLifecycle(newRef, libvirt.DomainEventDefined, int32(libvirt.DomainEventDefinedRenamed))
	return nil
}
