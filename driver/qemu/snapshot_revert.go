package qemu

import (
	"context"
	"fmt"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/snapshot"
)

// RevertToSnapshot implements driver.DomainSnapshots (qemuSnapshotRevert
// of libvirt 9.0, which reverts internal snapshots only). A snapshot with
// memory loads it into the running QEMU (loadvm), or into one started
// paused for it; one without stops the domain and reverts its disks with
// qemu-img. The domain ends running or paused as the snapshot was, unless
// VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING or _PAUSED say otherwise.
func (d *Driver) RevertToSnapshot(ctx context.Context, ref libvirt.DomainSnapshot, flags uint32) error {
	if flags&^(snapRevertRunning|snapRevertPaused|snapRevertForce|snapRevertResetNvram) != 0 {
		return errUnsupportedFlagsIn(flags, "qemuDomainRevertToSnapshot")
	}
	if flags&snapRevertRunning != 0 && flags&snapRevertPaused != 0 {
		return compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "Flags 'VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING' and 'VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED' are mutually exclusive")
	}
	dom, _, err := d.snapDomain(ref.Dom)
	if err != nil {
		return err
	}
	return withJob(ctx, dom, "remoteDispatchDomainRevertToSnapshot", func() error {
		return d.revert(ctx, dom, ref.Name, flags)
	})
}

func (d *Driver) revert(ctx context.Context, dom *domain, name string, flags uint32) error {
	dom.mu.Lock()
	domName, persistent, active, saved := dom.name, dom.persistent, dom.id != -1, dom.managedSave
	dom.mu.Unlock()
	def, err := d.snaps.Get(domName, name)
	if err != nil {
		return err
	}
	withMemory := def.State == snapshot.StateRunning || def.State == snapshot.StatePaused
	startFlags := flags & (snapRevertRunning | snapRevertPaused)
	if !persistent && !withMemory && startFlags == 0 {
		return compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "transient domain needs to request run or pause to revert to inactive snapshot")
	}
	if snapshot.IsExternal(def) {
		return compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "revert to external snapshot not supported yet")
	}
	if flags&snapRevertForce == 0 {
		switch {
		case def.Domain == nil:
			return compat.Errorf(libvirt.ErrSnapshotRevertRisky, compat.FromQEMU, "snapshot '%s' lacks domain '%s' rollback info", name, domName)
		case active && !withMemory && startFlags != 0:
			return compat.Errorf(libvirt.ErrSnapshotRevertRisky, compat.FromQEMU, "must respawn qemu to start inactive snapshot")
		case saved && !withMemory:
			return compat.Errorf(libvirt.ErrSnapshotRevertRisky, compat.FromQEMU, "snapshot without memory state, removal of existing managed saved state strongly recommended to avoid corruption")
		}
	}
	if def.Domain == nil {
		return compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "snapshot '%s' has no domain definition to revert to", name)
	}
	// The definitions the domain goes back to: the one it ran with, and
	// its persistent one (the same for a snapshot of a shut off domain).
	config, err := d.snapshotDefinition(def.Domain, domName)
	if err != nil {
		return err
	}
	inactive := config
	if def.InactiveDomain != nil {
		if inactive, err = d.snapshotDefinition(&def.InactiveDomain.Domain, domName); err != nil {
			return err
		}
	}
	if withMemory {
		err = d.revertWithMemory(ctx, dom, def, config, flags)
	} else {
		err = d.revertDisks(ctx, dom, def, config, startFlags)
	}
	if err != nil {
		return err
	}
	if err := d.snaps.SetCurrent(domName, name); err != nil {
		return err
	}
	if persistent {
		dom.mu.Lock()
		old := dom.def
		dom.mu.Unlock()
		if err := d.saveConfig(dom, old, inactive); err != nil {
			return err
		}
		d.emitLifecycle(dom.ref(), libvirt.DomainEventDefined, int32(libvirt.DomainEventDefinedFromSnapshot))
	}
	return nil
}

// snapshotDefinition turns a definition a snapshot kept into one the
// domain can use now, under its current name.
func (d *Driver) snapshotDefinition(kept *libvirtxml.Domain, name string) (*libvirtxml.Domain, error) {
	c := *kept
	c.Name = name
	text, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	def, _, err := d.parseDefinition(text)
	if err != nil {
		return nil, fmt.Errorf("the snapshot's domain definition: %w", err)
	}
	return def, nil
}

// revertWithMemory loads a running or paused snapshot (transitions 2, 3,
// 5, 6, 8 and 9 of qemuSnapshotRevert).
func (d *Driver) revertWithMemory(ctx context.Context, dom *domain, def *libvirtxml.DomainSnapshot, config *libvirtxml.Domain, flags uint32) error {
	wasStopped, wasRunning := !dom.active(), false
	if wasStopped {
		if err := d.start(ctx, dom, config, startOptions{paused: true, reason: libvirt.DomainRunningFromSnapshot, quiet: true}); err != nil {
			return err
		}
		d.emitLifecycle(dom.ref(), libvirt.DomainEventStarted, int32(libvirt.DomainEventStartedFromSnapshot))
	} else if ran, err := d.pauseQuietly(ctx, dom, libvirt.DomainPausedFromSnapshot); err != nil {
		return err
	} else {
		wasRunning = ran
	}
	dom.setState(libvirt.DomainPaused, int32(libvirt.DomainPausedFromSnapshot))
	if err := hmpSnapshot(ctx, dom, "loadvm", def.Name); err != nil {
		return err
	}
	paused := flags&snapRevertRunning == 0 && (def.State == snapshot.StatePaused || flags&snapRevertPaused != 0)
	if paused {
		d.saveStatus(dom)
		if wasStopped || wasRunning {
			d.emitLifecycle(dom.ref(), libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedFromSnapshot))
		}
		return nil
	}
	return d.resumeQuietly(ctx, dom, libvirt.DomainRunningFromSnapshot)
}

// revertDisks reverts to a snapshot of a shut off domain (transitions 1,
// 4 and 7, then 2 or 3 when asked to run).
func (d *Driver) revertDisks(ctx context.Context, dom *domain, def *libvirtxml.DomainSnapshot, config *libvirtxml.Domain, startFlags uint32) error {
	if dom.active() {
		if err := d.stop(ctx, dom, stopCause{reason: libvirt.DomainShutoffFromSnapshot, detail: libvirt.DomainEventStoppedFromSnapshot}, killGrace); err != nil {
			return err
		}
	}
	if err := qcow2Snapshots(ctx, config, def, "-a"); err != nil {
		return err
	}
	if startFlags == 0 {
		return nil
	}
	paused := startFlags&snapRevertPaused != 0
	if err := d.start(ctx, dom, config, startOptions{paused: paused, reason: libvirt.DomainRunningFromSnapshot, quiet: true}); err != nil {
		return err
	}
	d.emitLifecycle(dom.ref(), libvirt.DomainEventStarted, int32(libvirt.DomainEventStartedFromSnapshot))
	if paused {
		dom.setState(libvirt.DomainPaused, int32(libvirt.DomainPausedFromSnapshot))
		d.saveStatus(dom)
		d.emitLifecycle(dom.ref(), libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedFromSnapshot))
	}
	return nil
}
