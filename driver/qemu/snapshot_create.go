package qemu

import (
	"context"
	"errors"
	"os"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver/qemu/domainxml"
	"github.com/govirtd/govirtd/driver/qemu/snapshot"
)

// SnapshotCreateXML implements driver.DomainSnapshots
// (qemuSnapshotCreateXML).
func (d *Driver) SnapshotCreateXML(ctx context.Context, ref libvirt.Domain, xml string, flags uint32) (string, error) {
	allowed := snapCreateRedefine | snapCreateCurrent | snapCreateNoMetadata | snapCreateHalt | snapCreateDiskOnly |
		snapCreateReuseExt | snapCreateQuiesce | snapCreateAtomic | snapCreateLive | snapCreateValidate
	if flags&^allowed != 0 {
		return "", errUnsupportedFlagsIn(flags, "qemuDomainSnapshotCreateXML")
	}
	if flags&snapCreateQuiesce != 0 && flags&snapCreateDiskOnly == 0 {
		return "", compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY' is required by flag 'VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE'")
	}
	if flags&snapCreateLive != 0 && flags&snapCreateRedefine != 0 {
		return "", compat.Errorf(libvirt.ErrInvalidArg, compat.FromQEMU, "Flags 'VIR_DOMAIN_SNAPSHOT_CREATE_LIVE' and 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' are mutually exclusive")
	}
	dom, _, err := d.snapDomain(ref)
	if err != nil {
		return "", err
	}
	var name string
	err = withJob(ctx, dom, "remoteDispatchDomainSnapshotCreateXML", func() error {
		var err error
		name, err = d.createSnapshot(ctx, dom, xml, flags)
		return err
	})
	return name, err
}

// createSnapshot does the work of SnapshotCreateXML; the caller holds
// dom's job.
func (d *Driver) createSnapshot(ctx context.Context, dom *domain, xml string, flags uint32) (string, error) {
	dom.mu.Lock()
	active, persistent, state := dom.id != -1, dom.persistent, dom.state
	live, config, domName := dom.live, dom.def, dom.name
	dom.mu.Unlock()
	redefine := flags&snapCreateRedefine != 0
	noMetadata := flags&snapCreateNoMetadata != 0
	diskOnly := flags&snapCreateDiskOnly != 0
	if !persistent && flags&snapCreateHalt != 0 {
		return "", compat.Errorf(libvirt.ErrOperationInvalid, compat.FromQEMU, "cannot halt after transient domain snapshot")
	}
	def, err := snapshot.Parse(xml, snapshot.ParseOptions{Redefine: redefine, Offline: diskOnly || !active})
	if err != nil {
		return "", err
	}
	// Definitions are stored in files named after the snapshot.
	if !noMetadata {
		if strings.Contains(def.Name, "/") {
			return "", compat.Errorf(libvirt.ErrXMLDetail, compat.FromQEMU, "invalid snapshot name '%s': name can't contain '/'", def.Name)
		}
		if strings.HasPrefix(def.Name, ".") {
			return "", compat.Errorf(libvirt.ErrXMLDetail, compat.FromQEMU, "invalid snapshot name '%s': name can't start with '.'", def.Name)
		}
	}
	if flags&snapCreateLive != 0 && (!active || def.Memory == nil || def.Memory.Snapshot != snapshot.LocationExternal) {
		return "", compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "live snapshot creation is supported only during full system snapshots")
	}
	if redefine {
		return d.redefineSnapshot(domName, def, flags)
	}
	if state == libvirt.DomainPmsuspended {
		return "", compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "qemu doesn't support taking snapshots of PMSUSPENDED guests")
	}
	if _, err := d.snaps.Get(domName, def.Name); err == nil {
		return "", compat.Errorf(libvirt.ErrOperationFailed, compat.FromDomain, "domain moment %s already exists", def.Name)
	}
	cur := config
	if active {
		cur = live
	}
	// The snapshot keeps the domain as it is now, in its migratable
	// inactive form (qemuDomainDefFormatLive), and the persistent
	// definition of a running domain.
	if def.Domain, err = snapshotDomain(cur); err != nil {
		return "", err
	}
	if active {
		// libvirt's copy of a running domain keeps its partition.
		def.Domain.Resource = &libvirtxml.DomainResource{Partition: "/machine"}
	}
	if active && config != nil {
		c, err := cloneDef(config)
		if err != nil {
			return "", err
		}
		def.InactiveDomain = &libvirtxml.DomainSnapshotInactiveDomain{Domain: *c}
	}
	location := snapshot.LocationInternal
	match := true
	switch {
	case diskOnly:
		location, match = snapshot.LocationExternal, false
		def.State = snapshot.StateShutoff
		if active {
			def.State = snapshot.StateDiskSnapshot
		}
		def.Memory = &libvirtxml.DomainSnapshotMemory{Snapshot: snapshot.LocationNo}
	case def.Memory != nil && def.Memory.Snapshot == snapshot.LocationExternal:
		return "", compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "external memory snapshots are not supported by govirtd")
	default:
		def.State = snapshotState(state)
		if active && def.Memory != nil && def.Memory.Snapshot == snapshot.LocationNo {
			return "", compat.Errorf(libvirt.ErrOperationUnsupported, compat.FromQEMU, "internal snapshot of a running VM must include the memory state")
		}
		mem := snapshot.LocationInternal
		if def.State == snapshot.StateShutoff {
			mem = snapshot.LocationNo
		}
		def.Memory = &libvirtxml.DomainSnapshotMemory{Snapshot: mem}
	}
	if err := alignDisks(def, cur, location, match); err != nil {
		return "", err
	}
	external, err := prepareSnapshot(def, cur, active, flags&snapCreateReuseExt != 0)
	if err != nil {
		return "", err
	}
	if parent := d.snaps.Current(domName); parent != "" {
		def.Parent = &libvirtxml.DomainSnapshotParent{Name: parent}
	}
	switch {
	case active && external:
		if flags&snapCreateQuiesce != 0 {
			if err := agentAvailable(cur); err != nil {
				return "", err
			}
		}
		err = d.snapshotLiveExternal(ctx, dom, def, flags&snapCreateReuseExt != 0)
	case active:
		err = d.snapshotLiveInternal(ctx, dom, def.Name)
	case external:
		err = d.snapshotOfflineExternal(dom, def, flags&snapCreateReuseExt != 0)
	default:
		err = qcow2Snapshots(ctx, config, def, "-c")
	}
	if err != nil {
		return "", err
	}
	if flags&snapCreateHalt != 0 && active {
		if err := d.stop(ctx, dom, stopCause{reason: libvirt.DomainShutoffFromSnapshot, detail: libvirt.DomainEventStoppedFromSnapshot}, killGrace); err != nil {
			return "", err
		}
	}
	if noMetadata {
		return def.Name, nil
	}
	if err := d.snaps.Put(domName, def, true); err != nil {
		return "", compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "unable to save metadata for snapshot %s", def.Name)
	}
	return def.Name, nil
}

// redefineSnapshot records a snapshot definition as given
// (VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE; virsh snapshot-current NAME uses
// it with ..._CURRENT to change the current snapshot).
func (d *Driver) redefineSnapshot(domName string, def *libvirtxml.DomainSnapshot, flags uint32) (string, error) {
	old, err := d.snaps.Get(domName, def.Name)
	if err == nil {
		// What the client leaves out of a redefinition stays as it was.
		if def.Domain == nil {
			def.Domain = old.Domain
		}
		if def.InactiveDomain == nil {
			def.InactiveDomain = old.InactiveDomain
		}
		if def.Disks == nil {
			def.Disks = old.Disks
		}
	}
	if def.Domain == nil {
		return "", compat.Errorf(libvirt.ErrInternalError, compat.FromDomainSnapshot, "missing domain in snapshot")
	}
	if p := snapshot.ParentName(def); p != "" {
		if p == def.Name {
			return "", compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "cannot set moment %s as its own parent", def.Name)
		}
		if _, err := d.snaps.Get(domName, p); err != nil {
			return "", compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "parent %s for moment %s not found", p, def.Name)
		}
		for a := p; a != ""; {
			s, err := d.snaps.Get(domName, a)
			if err != nil {
				break
			}
			if snapshot.ParentName(s) == def.Name {
				return "", compat.Errorf(libvirt.ErrInvalidArg, compat.FromDomain, "parent %s would create cycle to %s", p, def.Name)
			}
			a = snapshot.ParentName(s)
		}
	}
	if flags&snapCreateNoMetadata != 0 {
		return def.Name, nil
	}
	if err := d.snaps.Put(domName, def, flags&snapCreateCurrent != 0); err != nil {
		return "", err
	}
	return def.Name, nil
}

// snapshotDomain is the domain definition a snapshot records.
func snapshotDomain(cur *libvirtxml.Domain) (*libvirtxml.Domain, error) {
	text, err := domainxml.Format(cur, domainxml.FormatOptions{Inactive: true, Migratable: true, Secure: true})
	if err != nil {
		return nil, err
	}
	c := &libvirtxml.Domain{}
	if err := c.Unmarshal(text); err != nil {
		return nil, err
	}
	return c, nil
}

func snapErr(code libvirt.ErrorNumber, format string, args ...any) error {
	return compat.Errorf(code, compat.FromDomainSnapshot, format, args...)
}

// alignDisks is virDomainSnapshotAlignDisks: one snapshot disk per disk
// of the domain, in the domain's order, each with its location; external
// ones without a file get libvirt's default name.
func alignDisks(def *libvirtxml.DomainSnapshot, dom *libvirtxml.Domain, location string, match bool) error {
	var disks []libvirtxml.DomainDisk
	if dom.Devices != nil {
		disks = dom.Devices.Disks
	}
	given := map[int]libvirtxml.DomainSnapshotDisk{}
	if def.Disks != nil {
		for _, sd := range snapDisks(def) {
			idx := -1
			for i := range disks {
				if disks[i].Target != nil && disks[i].Target.Dev == sd.Name || diskPath(&disks[i]) != "" && diskPath(&disks[i]) == sd.Name {
					idx = i
					break
				}
			}
			if idx < 0 {
				return snapErr(libvirt.ErrConfigUnsupported, "no disk named '%s'", sd.Name)
			}
			if _, dup := given[idx]; dup {
				return snapErr(libvirt.ErrConfigUnsupported, "disk '%s' specified twice", sd.Name)
			}
			sd.Name = diskTarget(&disks[idx])
			if sd.Snapshot == "" {
				sd.Snapshot = location
				if disks[idx].Snapshot != "" {
					sd.Snapshot = disks[idx].Snapshot
				}
			}
			if match && sd.Snapshot != location && sd.Snapshot != snapshot.LocationNo {
				return snapErr(libvirt.ErrConfigUnsupported, "disk '%s' must use snapshot mode '%s'", sd.Name, location)
			}
			given[idx] = sd
		}
	}
	out := make([]libvirtxml.DomainSnapshotDisk, 0, len(disks))
	for i := range disks {
		sd, ok := given[i]
		if !ok {
			sd = libvirtxml.DomainSnapshotDisk{Name: diskTarget(&disks[i]), Snapshot: location}
			switch {
			case diskPath(&disks[i]) == "" || disks[i].ReadOnly != nil || disks[i].Device == "cdrom":
				sd.Snapshot = snapshot.LocationNo
			case disks[i].Snapshot != "":
				sd.Snapshot = disks[i].Snapshot
			}
		}
		out = append(out, sd)
	}
	def.Disks = &libvirtxml.DomainSnapshotDisks{Disks: out}
	// virDomainSnapshotDefAssignExternalNames.
	for i := range out {
		sd := &out[i]
		if sd.Snapshot != snapshot.LocationExternal || sd.Source != nil {
			continue
		}
		orig := diskPath(&disks[i])
		if orig == "" {
			return snapErr(libvirt.ErrConfigUnsupported, "cannot generate external snapshot name for disk '%s' without source", sd.Name)
		}
		if disks[i].Source.File == nil {
			return snapErr(libvirt.ErrConfigUnsupported, "source for disk '%s' is not a regular file; refusing to generate external snapshot name", sd.Name)
		}
		base := orig
		if dot := strings.LastIndex(base, "."); dot > strings.LastIndex(base, "/") {
			base = base[:dot]
		}
		path := base + "." + def.Name
		for j := 0; j < i; j++ {
			if o := out[j].Source; o != nil && o.File != nil && o.File.File == path {
				return snapErr(libvirt.ErrConfigUnsupported, "cannot generate external snapshot name for disk '%s': collision with disk '%s'", sd.Name, out[j].Name)
			}
		}
		sd.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}}
	}
	for i := range out {
		if out[i].Snapshot != snapshot.LocationExternal {
			continue
		}
		if out[i].Driver == nil {
			out[i].Driver = &libvirtxml.DomainDiskDriver{}
		}
		if out[i].Driver.Type == "" {
			out[i].Driver.Type = "qcow2"
		}
	}
	return nil
}

func diskFormat(disk *libvirtxml.DomainDisk) string {
	if disk.Driver != nil && disk.Driver.Type != "" {
		return disk.Driver.Type
	}
	return "raw"
}

// prepareSnapshot is qemuSnapshotPrepare's checks; it reports whether the
// snapshot is external.
func prepareSnapshot(def *libvirtxml.DomainSnapshot, dom *libvirtxml.Domain, active, reuse bool) (bool, error) {
	foundInternal, forbidInternal, external := false, false, 0
	for i, sd := range snapDisks(def) {
		disk := &dom.Devices.Disks[i]
		switch sd.Snapshot {
		case snapshot.LocationInternal:
			foundInternal = true
			if def.State == snapshot.StateDiskSnapshot && active {
				return false, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "active qemu domains require external disk snapshots; disk %s requested internal", sd.Name)
			}
			if f := diskFormat(disk); f != "qcow2" {
				return false, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "internal snapshot for disk %s unsupported for storage type %s", sd.Name, f)
			}
		case snapshot.LocationExternal:
			if f := sd.Driver.Type; f != "qcow2" {
				return false, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "external snapshot format for disk %s is unsupported: %s", sd.Name, f)
			}
			if disk.Source == nil || disk.Source.File == nil {
				return false, compat.Errorf(libvirt.ErrInternalError, compat.FromQEMU, "external snapshots are supported by govirtd only on file disks")
			}
			path := sd.Source.File.File
			st, err := os.Stat(path)
			switch {
			case err != nil && !errors.Is(err, os.ErrNotExist):
				return false, compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "unable to stat for disk %s: %s: %v", sd.Name, path, unwrapSyscall(err))
			case err != nil && reuse:
				return false, compat.Errorf(libvirt.ErrSystemError, compat.FromQEMU, "missing existing file for disk %s: %s: No such file or directory", sd.Name, path)
			case err == nil && st.Mode().IsRegular() && st.Size() > 0 && !reuse:
				return false, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "external snapshot file for disk %s already exists and is not a block device: %s", sd.Name, path)
			}
			external++
		case snapshot.LocationNo:
			if diskPath(disk) != "" && disk.ReadOnly == nil && disk.Device != "cdrom" {
				forbidInternal = true
			}
		default:
			return false, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "snapshot location '%s' of disk %s is not supported", sd.Snapshot, sd.Name)
		}
	}
	memory := def.Memory.Snapshot
	if !foundInternal && external == 0 && memory == snapshot.LocationNo {
		return false, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "nothing selected for snapshot")
	}
	if memory == snapshot.LocationInternal && !foundInternal || foundInternal && forbidInternal {
		return false, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "internal and full system snapshots require all disks to be selected for snapshot")
	}
	if def.State == snapshot.StateDiskSnapshot && external == 0 {
		return false, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "disk-only snapshots require at least one disk to be selected for snapshot")
	}
	if foundInternal && external > 0 || memory == snapshot.LocationInternal && external > 0 {
		return false, compat.Errorf(libvirt.ErrConfigUnsupported, compat.FromQEMU, "mixing internal and external targets for a snapshot is not yet supported")
	}
	return external > 0, nil
}

// agentAvailable is qemuDomainAgentAvailable for a domain govirtd runs:
// it does not talk to guest agents, so a configured agent is never
// connected.
func agentAvailable(dom *libvirtxml.Domain) error {
	if dom.Devices != nil {
		for _, ch := range dom.Devices.Channels {
			if ch.Target != nil && ch.Target.VirtIO != nil && ch.Target.VirtIO.Name == "org.qemu.guest_agent.0" {
				return compat.Errorf(libvirt.ErrAgentUnresponsive, compat.FromQEMU, "QEMU guest agent is not connected")
			}
		}
	}
	return compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromQEMU, "QEMU guest agent is not configured")
}

// snapDisks are a snapshot's disks (none for a redefinition without).
func snapDisks(def *libvirtxml.DomainSnapshot) []libvirtxml.DomainSnapshotDisk {
	if def.Disks == nil {
		return nil
	}
	return def.Disks.Disks
}
